"""Pure rules of the notifications service: who hears what, identities, signatures."""
