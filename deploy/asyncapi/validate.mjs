#!/usr/bin/env node
// Validates an AsyncAPI document with the official parser (@asyncapi/parser):
// the schema of the specification, its semantic rules and every $ref, including
// the relative ones to docs/events/*.json (resolved from the document's folder).
//
//   node deploy/asyncapi/validate.mjs [docs/asyncapi.json]
//
// Exit status 0 when the parser reports no error (warnings are printed),
// 1 when it reports at least one error, 2 on a usage problem.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Parser, fromFile } from '@asyncapi/parser';

const SEVERITY = ['error', 'warning', 'info', 'hint'];

const file = path.resolve(process.argv[2] ?? 'docs/asyncapi.json');
if (!existsSync(file)) {
  console.error(`asyncapi: ${file}: no such file`);
  process.exit(2);
}

const parser = new Parser();
const { document, diagnostics } = await fromFile(parser, file).parse({
  validateOptions: { allowedSeverity: { warning: true, info: true, hint: true } },
});

let errors = 0;
let warnings = 0;
for (const d of diagnostics) {
  const severity = SEVERITY[d.severity] ?? String(d.severity);
  if (severity === 'error') errors += 1;
  else if (severity === 'warning') warnings += 1;
  else continue; // info and hints are noise here
  const where = d.path && d.path.length ? d.path.join('.') : '(document)';
  console.log(`${severity}: ${d.code}: ${where}: ${d.message}`);
}

if (errors || document === undefined) {
  console.error(`asyncapi: ${file}: INVALID, ${errors} error(s), ${warnings} warning(s)`);
  process.exit(1);
}
const channels = document.channels().length;
const operations = document.operations().length;
const messages = document.components().messages().length;
console.log(
  `asyncapi: ${file}: valid AsyncAPI ${document.version()} (${channels} channels, ` +
    `${operations} operations, ${messages} messages; ${warnings} warning(s))`,
);
