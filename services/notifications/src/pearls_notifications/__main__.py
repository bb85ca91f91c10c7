def main() -> None:  # replaced by the service
    raise SystemExit("not built yet")
