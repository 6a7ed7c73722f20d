#!/usr/bin/env node
//! The CloudFront WAF web ACL, generated from the tenants file (the file `pixelfront tenant`
//! loads: tenant id -> policy, events/tenants.example.json shows the shape).
//!
//! A CLOUDFRONT-scope web ACL must be created in us-east-1, whatever the region of the main
//! stack, so it is a template of its own (`waf.yaml`), deployed there and passed to
//! template.yaml as `WebAclArn`. It holds:
//!   - `rate-per-ip`: a rate-based rule, at most `RateLimitPer5Min` requests per source IP in
//!     any 5 minutes, else 429;
//!   - `hotlink-{tenant}` for every tenant with a non-empty `referers` list: 403 "hotlink
//!     refused" when the path starts with /img/{tenant}/, a Referer header is present and its
//!     host is none of the allowed ones (a RegexPatternSet per tenant).
//!
//! Of each policy only `referers` matters here: this file checks the tenant ids and the
//! Referer hosts (they become rule names, paths and regexes) and leaves the rest of the
//! validation to `pixelfront tenant`. `#default`, the policy of tenants without an entry, gets
//! no rule (a path prefix cannot name "every other tenant"): the function alone refuses their
//! hotlinks.
//!
//!     node edge/gen-waf.mjs [--tenants <file>] [--out <file>]   write the template
//!     node edge/gen-waf.mjs --check [--tenants <file>] [--out <file>]
//!                                      exit 1 if <out> differs from what <tenants> gives
//!
//! Defaults: --tenants events/tenants.example.json, --out waf.yaml (the committed example).
//! Exit codes: 0 ok, 1 stale (`--check`) or invalid tenants file, 2 usage error or unreadable
//! input.
//!
//! The Referer regexes: the viewer-request function's refererOk takes the host as the
//! characters after the FIRST '://' up to the first '/', '?', '#' or ':', compares it without
//! ASCII case with each entry, and lets `*.suffix` match any host that ends with `.suffix` and
//! has at least one character before it. `refererRegex` builds the same test for AWS WAF
//! (libpcre syntax without capturing groups or lookarounds) on the Referer after the
//! LOWERCASE text transformation:
//!
//!     ^ PREFIX :// HOST (?:[/?#:]|$)
//!
//! PREFIX matches exactly the strings that contain no '://' (a three-state automaton: after
//! nothing, after ':', after ':/'), which pins the match to the first '://'; HOST is the
//! escaped entry, or `[^/?#:]+` followed by the escaped `.suffix`. Known differences, both in
//! corners browsers do not produce: a Referer header sent more than once (the function reads
//! the first value; which one WAF inspects is not specified) and a Referer ending in a line
//! feed (libpcre's `$` also matches before a final newline). WAF runs before the function, and
//! the function still checks every request, so the WAF rule only saves work and answers
//! earlier. (A plain `^https?://(host)(:[0-9]+)?(/|$)` would differ more: WAF refuses
//! capturing groups, and it would block Referers that the function accepts, such as
//! `https://shop.example.com?x` or `android-app://shop.example.com/`.)

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { commandLine } from './args.mjs';

export const DEFAULT_TENANTS = fileURLToPath(new URL('../events/tenants.example.json', import.meta.url));
export const DEFAULT_OUT = fileURLToPath(new URL('../waf.yaml', import.meta.url));

/** AWS WAF fixed quotas that this template runs into (AWS WAF developer guide, "quotas"). */
export const WAF_MAX_REGEX_PER_SET = 10;
export const WAF_MAX_REGEX_CHARS = 200;
export const WAF_MAX_REFERENCE_STATEMENTS = 50;
/** Adjustable default: regex pattern sets per account and region. */
export const WAF_DEFAULT_REGEX_SETS = 10;
/** WCUs included in the web ACL price; above it each 500 WCUs cost extra. Hard limit 5,000. */
export const WAF_INCLUDED_WCU = 1500;
export const WAF_MAX_WCU = 5000;

/** No '://' in what it matches: the prefix before the first '://'. */
export const REFERER_PREFIX = '^(?:[^:]|:(?::|/:)*(?:[^:/]|/[^:/]))*(?::(?::|/:)*/?)?://';
/** The host ends at '/', '?', '#', ':' or the end. */
export const REFERER_SUFFIX = '(?:[/?#:]|$)';

const asciiLower = (s) => s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
const escapeRegex = (s) => s.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');

/** The WAF regex (for the LOWERCASE-transformed Referer) that accepts what refererOk accepts for `entry`. */
export function refererRegex(entry) {
  const e = asciiLower(entry);
  const host = e.startsWith('*.') ? '[^/?#:]+' + escapeRegex(e.slice(1)) : escapeRegex(e);
  return REFERER_PREFIX + host + REFERER_SUFFIX;
}

/** CloudFormation logical id of a tenant's pattern set; injective over tenant ids, also ignoring case. */
export function patternSetId(tenant) {
  const enc = tenant.replace(/[z-]/g, (c) => (c === 'z' ? 'zz' : 'z0'));
  return 'RefererHosts' + enc[0].toUpperCase() + enc.slice(1);
}

/** Estimated WCUs: rate rule 2; per tenant: starts-with 2, size 1, pattern set 25 + LOWERCASE 10. */
export function estimateWcu(hotlinkTenants) {
  return 2 + 38 * hotlinkTenants;
}

// --- The tenants file: the tenant ids and their Referer hosts ---------------------------------

/** docs/url-grammar.md (the path); the same pattern as viewer-request.js and shared/src/normalize.rs. */
export const TENANT_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** The key of the default policy (tenants without an entry of their own); never a tenant id. */
export const DEFAULT_KEY = '#default';
/** A Referer host entry: `shop.example.com` or `*.example.com` (any letter case). */
export const REFERER_RE = /^(?:\*\.)?[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$/;

/** Every problem of a tenants file (or of the web ACL it would give), one message per line. */
export class TenantsError extends Error {
  constructor(source, errors) {
    super(`${source}: ${errors.length} problem${errors.length === 1 ? '' : 's'}:\n  ${errors.join('\n  ')}`);
    this.errors = errors;
  }
}

const isObject = (x) => !!x && typeof x === 'object' && !Array.isArray(x);

/**
 * A tenants file's text -> Map, sorted by key (tenant ids and `#default`), of {referers}
 * (absent: []). Throws TenantsError listing every problem of the ids and Referer hosts.
 */
export function parseTenants(text, source = 'tenants file') {
  let value;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new TenantsError(source, [`not JSON: ${e.message}`]);
  }
  if (!isObject(value)) throw new TenantsError(source, ['expected a JSON object: tenant id -> policy']);
  const errors = [];
  const out = new Map();
  for (const tenant of Object.keys(value).sort()) {
    const p = value[tenant];
    const at = `tenant '${tenant}'`;
    if (tenant !== DEFAULT_KEY && !TENANT_RE.test(tenant)) {
      errors.push(`${at}: bad tenant id (expected [a-z0-9][a-z0-9-]{0,62})`);
    }
    if (!isObject(p)) {
      errors.push(`${at}: the policy must be an object {"sign", "keys", "referers"}`);
      continue;
    }
    const referers = p.referers ?? [];
    if (!Array.isArray(referers)) {
      errors.push(`${at}: "referers" must be an array of hosts`);
      continue;
    }
    const seen = new Set();
    for (const r of referers) {
      if (typeof r !== 'string' || !REFERER_RE.test(r) || r.length > 253) {
        errors.push(
          `${at}: bad referer ${JSON.stringify(r)} (expected a host such as shop.example.com ` +
            'or *.example.com: no scheme, port or path)',
        );
      } else if (seen.has(r.toLowerCase())) {
        errors.push(`${at}: referer '${r}' listed twice`);
      } else {
        seen.add(r.toLowerCase());
      }
    }
    out.set(tenant, { referers });
  }
  if (errors.length) throw new TenantsError(source, errors);
  return out;
}

/** Read and parse a tenants file (TenantsError when invalid; fs errors as they are). */
export function loadTenants(path) {
  return parseTenants(readFileSync(path, 'utf8'), path);
}

// --- A small YAML writer for CloudFormation (block style, intrinsic short forms) -------------

class Tag {
  constructor(tag, value) {
    this.tag = tag;
    this.value = value;
  }
}
const ref = (name) => new Tag('!Ref', name);
const sub = (s) => new Tag('!Sub', s);
const getAtt = (s) => new Tag('!GetAtt', s);
const equals = (a, b) => new Tag('!Equals', [a, b]);

const PLAIN = /^[A-Za-z_/][A-Za-z0-9_./:-]*$/;
const RESERVED = /^(?:y|n|yes|no|true|false|on|off|null)$/i;

function scalar(v) {
  if (v instanceof Tag) {
    const inner = Array.isArray(v.value) ? `[${v.value.map(scalar).join(', ')}]` : scalar(v.value);
    return `${v.tag} ${inner}`;
  }
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (typeof v === 'string') {
    if (PLAIN.test(v) && !RESERVED.test(v) && !v.includes(': ') && !v.endsWith(':')) return v;
    return `'${v.replace(/'/g, "''")}'`;
  }
  throw new Error(`yaml: cannot write ${typeof v}`);
}

const isScalar = (v) => v instanceof Tag || v === null || typeof v !== 'object';

function yamlLines(v, indent) {
  const pad = ' '.repeat(indent);
  if (Array.isArray(v)) {
    if (v.length === 0) return [`${pad}[]`];
    const out = [];
    for (const item of v) {
      if (isScalar(item)) {
        out.push(`${pad}- ${scalar(item)}`);
      } else {
        const inner = yamlLines(item, indent + 2);
        out.push(`${pad}- ${inner[0].slice(indent + 2)}`, ...inner.slice(1));
      }
    }
    return out;
  }
  const out = [];
  for (const [k, val] of Object.entries(v)) {
    if (isScalar(val)) out.push(`${pad}${k}: ${scalar(val)}`);
    else if (!Array.isArray(val) && Object.keys(val).length === 0) out.push(`${pad}${k}: {}`);
    else if (Array.isArray(val) && val.length === 0) out.push(`${pad}${k}: []`);
    else out.push(`${pad}${k}:`, ...yamlLines(val, indent + 2));
  }
  return out;
}

// --- The template ----------------------------------------------------------------------------

const visibility = (metric) => ({
  SampledRequestsEnabled: true,
  CloudWatchMetricsEnabled: true,
  MetricName: metric,
});
const none = [{ Priority: 0, Type: 'NONE' }];

function hotlinkRule(tenant, priority) {
  return {
    Name: `hotlink-${tenant}`,
    Priority: priority,
    Action: { Block: { CustomResponse: { ResponseCode: 403, CustomResponseBodyKey: 'hotlink-refused' } } },
    VisibilityConfig: visibility(`hotlink-${tenant}`),
    Statement: {
      AndStatement: {
        Statements: [
          {
            ByteMatchStatement: {
              FieldToMatch: { UriPath: {} },
              PositionalConstraint: 'STARTS_WITH',
              SearchString: `/img/${tenant}/`,
              TextTransformations: none,
            },
          },
          // Present (an empty Referer counts, as in the function); a missing one never matches.
          {
            SizeConstraintStatement: {
              FieldToMatch: { SingleHeader: { Name: 'referer' } },
              ComparisonOperator: 'GE',
              Size: 0,
              TextTransformations: none,
            },
          },
          {
            NotStatement: {
              Statement: {
                RegexPatternSetReferenceStatement: {
                  Arn: getAtt(`${patternSetId(tenant)}.Arn`),
                  FieldToMatch: { SingleHeader: { Name: 'referer' } },
                  TextTransformations: [{ Priority: 0, Type: 'LOWERCASE' }],
                },
              },
            },
          },
        ],
      },
    },
  };
}

/**
 * The waf.yaml text for validated tenants (Map from loadTenants). Throws when a WAF fixed quota
 * would be exceeded; `warnings` (optional array) receives quota notes that do not stop it.
 */
export function wafTemplate(tenants, warnings = []) {
  const hotlink = [...tenants].filter(([t, p]) => t !== DEFAULT_KEY && p.referers.length > 0);
  if (tenants.get(DEFAULT_KEY)?.referers.length) {
    warnings.push(`'${DEFAULT_KEY}' lists referers: no WAF rule for tenants without an entry (the function still refuses their hotlinks)`);
  }
  const errors = [];
  for (const [tenant, p] of hotlink) {
    if (p.referers.length > WAF_MAX_REGEX_PER_SET) {
      errors.push(`tenant '${tenant}': ${p.referers.length} referers, a WAF regex pattern set holds at most ${WAF_MAX_REGEX_PER_SET}`);
    }
    for (const r of p.referers) {
      const n = refererRegex(r).length;
      if (n > WAF_MAX_REGEX_CHARS) {
        errors.push(`tenant '${tenant}': referer '${r}' gives a ${n}-character WAF regex (limit ${WAF_MAX_REGEX_CHARS})`);
      }
    }
  }
  if (hotlink.length > WAF_MAX_REFERENCE_STATEMENTS) {
    errors.push(`${hotlink.length} tenants with referers; a web ACL references at most ${WAF_MAX_REFERENCE_STATEMENTS} regex pattern sets`);
  }
  if (errors.length) throw new TenantsError('waf', errors);
  const wcu = estimateWcu(hotlink.length);
  if (hotlink.length > WAF_DEFAULT_REGEX_SETS) {
    warnings.push(`${hotlink.length} regex pattern sets: over the default quota of ${WAF_DEFAULT_REGEX_SETS} per account in us-east-1 (adjustable)`);
  }
  if (wcu > WAF_INCLUDED_WCU) {
    warnings.push(`about ${wcu} WCUs: over the ${WAF_INCLUDED_WCU} included in the web ACL price (hard limit ${WAF_MAX_WCU})`);
  }

  const resources = {};
  for (const [tenant, p] of hotlink) {
    resources[patternSetId(tenant)] = {
      Type: 'AWS::WAFv2::RegexPatternSet',
      Properties: {
        Name: sub(`\${AWS::StackName}-referers-${tenant}`),
        Scope: 'CLOUDFRONT',
        Description: `Referer hosts allowed to embed the images of tenant ${tenant}`,
        RegularExpressionList: p.referers.map(refererRegex),
      },
    };
  }
  const rules = [
    {
      Name: 'rate-per-ip',
      Priority: 0,
      Action: { Block: { CustomResponse: { ResponseCode: 429, CustomResponseBodyKey: 'rate-limited' } } },
      VisibilityConfig: visibility('rate-per-ip'),
      Statement: {
        RateBasedStatement: { Limit: ref('RateLimitPer5Min'), AggregateKeyType: 'IP', EvaluationWindowSec: 300 },
      },
    },
    ...hotlink.map(([tenant], i) => hotlinkRule(tenant, i + 1)),
  ];
  resources.WebAcl = {
    Type: 'AWS::WAFv2::WebACL',
    Properties: {
      Name: ref('AWS::StackName'),
      Scope: 'CLOUDFRONT',
      Description: 'Pixelfront CloudFront web ACL: per-IP rate limit and per-tenant hotlink protection',
      DefaultAction: { Allow: {} },
      CustomResponseBodies: {
        'hotlink-refused': { ContentType: 'TEXT_PLAIN', Content: 'hotlink refused' },
        'rate-limited': { ContentType: 'TEXT_PLAIN', Content: 'rate limited' },
      },
      VisibilityConfig: visibility('pixelfront-web-acl'),
      Rules: rules,
    },
  };

  const template = {
    AWSTemplateFormatVersion: '2010-09-09',
    Description: 'Pixelfront WAF web ACL for the CloudFront distribution (per-IP rate limit, per-tenant hotlink protection)',
    Parameters: {
      RateLimitPer5Min: {
        Type: 'Number',
        Description: 'Requests one source IP may send in any 5 minutes before it gets 429',
        MinValue: 10,
        MaxValue: 2000000000,
        Default: 2000,
      },
    },
    Rules: {
      CloudFrontScopeInUsEast1: {
        Assertions: [
          {
            Assert: equals(ref('AWS::Region'), 'us-east-1'),
            AssertDescription: 'A web ACL for CloudFront (Scope CLOUDFRONT) must be created in us-east-1',
          },
        ],
      },
    },
    Resources: resources,
    Outputs: {
      WebAclArn: {
        Description: 'Pass to template.yaml as WebAclArn',
        Value: getAtt('WebAcl.Arn'),
      },
    },
  };
  const listed = hotlink.map(([t, p]) => `#   ${t}: ${p.referers.join(', ')}`);
  const header = [
    '# Pixelfront WAF web ACL for CloudFront. GENERATED by edge/gen-waf.mjs from a tenants file:',
    '# do not edit by hand (the committed waf.yaml comes from events/tenants.example.json).',
    '#',
    '# Deploy in us-east-1 (CLOUDFRONT scope), then pass the WebAclArn output to template.yaml:',
    '#',
    '#   aws cloudformation deploy --region us-east-1 --stack-name pixelfront-waf --template-file waf.yaml',
    '#',
    `# Hotlink rules (${hotlink.length}; estimated ${wcu} WCUs):`,
    ...(listed.length ? listed : ['#   (none: no tenant lists referers)']),
    '',
  ];
  return header.join('\n') + '\n' + yamlLines(template, 0).join('\n').replace(/\n(Parameters|Rules|Resources|Outputs):/g, '\n\n$1:') + '\n';
}

const USAGE = 'usage: node edge/gen-waf.mjs [--check] [--tenants <file>] [--out <file>]';

/** The command line's options (`node:util` parseArgs, through `./args.mjs`). */
const OPTIONS = {
  check: { type: 'boolean', default: false },
  tenants: { type: 'string', default: DEFAULT_TENANTS },
  out: { type: 'string', default: DEFAULT_OUT },
  help: { type: 'boolean', short: 'h' },
};

function main(argv) {
  const { values, exit } = commandLine(argv, OPTIONS, USAGE);
  if (values === undefined) return exit;
  const { check, tenants: tenantsPath, out: outPath } = values;
  let text;
  const warnings = [];
  try {
    text = wafTemplate(loadTenants(tenantsPath), warnings);
  } catch (e) {
    console.error(`error: ${e.message}`);
    return e instanceof TenantsError ? 1 : 2;
  }
  for (const w of warnings) console.error(`warning: ${w}`);
  let current = null;
  try {
    current = readFileSync(outPath, 'utf8');
  } catch (e) {
    if (check || e.code !== 'ENOENT') {
      console.error(`error: ${e.message}`);
      return 2;
    }
  }
  if (check) {
    if (current === text) return 0;
    console.error(`${outPath}: differs from what ${tenantsPath} gives; run node edge/gen-waf.mjs`);
    return 1;
  }
  try {
    if (current !== text) {
      mkdirSync(dirname(outPath), { recursive: true });
      writeFileSync(outPath, text);
    }
  } catch (e) {
    console.error(`error: ${e.message}`);
    return 2;
  }
  console.log(current === text ? `${outPath}: up to date` : `${outPath}: written`);
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = main(process.argv.slice(2));
}
