#!/usr/bin/env node
//! Embeds the CloudFront Functions into template.yaml.
//!
//! `AWS::CloudFront::Function` takes its code inline (`FunctionCode`, a string), so the
//! template carries a verbatim copy of each function file (`edge/viewer-request.min.js`, the
//! minified viewer-request function written by `edge/minify.mjs`, and `edge/viewer-response.js`)
//! as a YAML literal block scalar between the marker comments
//! `# BEGIN GENERATED <file name>` and `# END GENERATED <file name>`. The BEGIN line's
//! indentation is the indentation of the `FunctionCode:` key; the code lines are indented two
//! spaces deeper.
//!
//!     node edge/gen-template.mjs           rewrite the blocks (no-op when already current)
//!     node edge/gen-template.mjs --check   exit 1 if an embedded copy differs from its file
//!
//! `--function <file>`, `--response-function <file>` and `--template <file>` override the
//! three paths (used by the tests).
//! Exit codes: 0 ok, 1 stale (`--check`), 2 usage error or unusable input.
//! The exported helpers let tests run the check logic on modified inputs.

import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { commandLine } from './args.mjs';

/** The marker comments around the block of function file `name`: [BEGIN, END]. */
export const markers = (name) => [`# BEGIN GENERATED ${name}`, `# END GENERATED ${name}`];
export const [BEGIN, END] = markers('viewer-request.js');
export const DEFAULT_FUNCTION = fileURLToPath(new URL('./viewer-request.min.js', import.meta.url));
export const DEFAULT_RESPONSE_FUNCTION = fileURLToPath(new URL('./viewer-response.js', import.meta.url));
export const DEFAULT_TEMPLATE = fileURLToPath(new URL('../template.yaml', import.meta.url));

// Characters a YAML literal block cannot carry verbatim: C0/C1 controls other than tab and
// line feed (CR would be folded into a line break), DEL, and the characters YAML 1.1 parsers
// treat as line breaks (NEL, LS, PS) or strip (BOM).
const UNEMBEDDABLE = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff]/;

/**
 * The `FunctionCode: |` entry holding `code` verbatim, its key indented by `indent` spaces.
 * The chomping indicator keeps the file's trailing line breaks exact: `|-` none, `|` one,
 * `|+` several.
 */
export function functionCodeBlock(code, indent) {
  const bad = code.match(UNEMBEDDABLE);
  if (bad) {
    const line = code.slice(0, bad.index).split('\n').length;
    const hex = bad[0].codePointAt(0).toString(16).padStart(4, '0');
    throw new Error(`function: line ${line} has U+${hex}, which a YAML block scalar cannot carry verbatim`);
  }
  if (code.trim() === '') throw new Error('function: the file is empty');
  const body = code.replace(/\n+$/, '');
  const trailing = code.length - body.length;
  // A first line that starts with a space would need an indentation indicator.
  if (/^[ \t]/.test(body)) throw new Error('function: the first line starts with whitespace');
  const chomp = trailing === 0 ? '-' : trailing === 1 ? '' : '+';
  const pad = ' '.repeat(indent + 2);
  const lines = body.split('\n').map((l) => (l === '' ? '' : pad + l));
  // `|+` keeps the extra line breaks: they are empty lines inside the block.
  for (let i = 1; i < trailing; i++) lines.push('');
  return `${' '.repeat(indent)}FunctionCode: |${chomp}\n${lines.join('\n')}\n`;
}

/** Locate the block of `name`: [start, end, indent], the text between its BEGIN and END lines. */
function blockRange(templateText, name) {
  const [BEGIN, END] = markers(name);
  const b = templateText.indexOf(BEGIN);
  if (b < 0) throw new Error(`template: marker '${BEGIN}' not found`);
  if (templateText.indexOf(BEGIN, b + 1) >= 0) throw new Error('template: BEGIN marker repeated');
  const lineStart = templateText.lastIndexOf('\n', b) + 1;
  const indentText = templateText.slice(lineStart, b);
  if (!/^ *$/.test(indentText)) throw new Error('template: the BEGIN marker must start its line');
  const start = templateText.indexOf('\n', b) + 1;
  if (start <= 0) throw new Error('template: nothing after the BEGIN marker');
  const e = templateText.indexOf(END, start);
  if (e < 0) throw new Error(`template: marker '${END}' not found after the BEGIN marker`);
  const endLineStart = templateText.lastIndexOf('\n', e) + 1;
  if (templateText.slice(endLineStart, e) !== indentText) {
    throw new Error('template: the END marker must be indented like the BEGIN marker');
  }
  return [start, endLineStart, indentText.length];
}

/** Compare the embedded block of `name` with the function file: {ok, expected, actual}. */
export function checkTemplate(templateText, code, name = 'viewer-request.js') {
  const [start, end, indent] = blockRange(templateText, name);
  const expected = functionCodeBlock(code, indent);
  const actual = templateText.slice(start, end);
  return { ok: actual === expected, expected, actual };
}

/** The template text with the block of `name` regenerated. */
export function withFunction(templateText, code, name = 'viewer-request.js') {
  const [start, end, indent] = blockRange(templateText, name);
  return templateText.slice(0, start) + functionCodeBlock(code, indent) + templateText.slice(end);
}

const USAGE =
  'usage: node edge/gen-template.mjs [--check] [--function <file>] [--response-function <file>] [--template <file>]';

/** The command line's options (`node:util` parseArgs, through `./args.mjs`). */
const OPTIONS = {
  check: { type: 'boolean', default: false },
  function: { type: 'string', default: DEFAULT_FUNCTION },
  'response-function': { type: 'string', default: DEFAULT_RESPONSE_FUNCTION },
  template: { type: 'string', default: DEFAULT_TEMPLATE },
  help: { type: 'boolean', short: 'h' },
};

function main(argv) {
  const { values, exit } = commandLine(argv, OPTIONS, USAGE);
  if (values === undefined) return exit;
  const { check, template: templatePath } = values;
  // Block name -> the file embedded there.
  const files = [
    ['viewer-request.js', values.function],
    ['viewer-response.js', values['response-function']],
  ];
  try {
    const templateText = readFileSync(templatePath, 'utf8');
    const codes = files.map(([name, path]) => [name, path, readFileSync(path, 'utf8')]);
    if (check) {
      const stale = codes.filter(([name, , code]) => !checkTemplate(templateText, code, name).ok);
      for (const [, path] of stale) {
        console.error(`${templatePath}: embedded function differs from ${path}; run node edge/gen-template.mjs`);
      }
      return stale.length ? 1 : 0;
    }
    const next = codes.reduce((text, [name, , code]) => withFunction(text, code, name), templateText);
    if (next !== templateText) writeFileSync(templatePath, next);
    console.log(next === templateText ? `${templatePath}: functions up to date` : `${templatePath}: functions updated`);
    return 0;
  } catch (e) {
    console.error(`error: ${e.message}`);
    return 2;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = main(process.argv.slice(2));
}
