// The generators' command line: `node:util` parseArgs with the usage on `-h`/`--help` and on
// a bad option (exit 2), shared by gen-policy, gen-template and gen-waf.

import { parseArgs } from 'node:util';

/**
 * Parses `argv` with `options` (which must include `help`). Returns `{ values }`, or
 * `{ exit }` with the exit code after printing the usage: 0 for help, 2 for a bad option.
 */
export function commandLine(argv, options, usage) {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options }));
  } catch (e) {
    console.error(`error: ${e.message}`);
    console.error(usage);
    return { exit: 2 };
  }
  if (values.help) {
    console.log(usage);
    return { exit: 0 };
  }
  return { values };
}
