"""The Lambda architecture is named once for build and deploy (issue 15, item 3).

`sam build` picks the cargo-lambda target from the `Architecture` parameter and `sam deploy`
sets the functions' architecture from it; if the two differ, the functions get binaries they
cannot run. This check fails unless samconfig.toml's `[default.build.parameters]` and
`[default.deploy.parameters]` both name `Architecture`, with the same value, equal to the
template's default and to what CI builds (the argument, e.g. x86_64).

    python3 .ci/check-architecture.py x86_64 [template.yaml [samconfig.toml]]

Needs the SAM CLI's Python (samcli.yamlhelper reads the template's intrinsic-function tags).
"""

import shlex
import sys
import tomllib

from samcli.yamlhelper import yaml_parse


def overrides(section, name):
    """The `parameter_overrides` of one samconfig section as a dict (string or list form)."""
    raw = section.get("parameter_overrides", "")
    pairs = {}
    for item in raw if isinstance(raw, list) else shlex.split(raw):
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"check-architecture: {name}: {item!r} is not Key=Value")
        pairs[key] = value
    return pairs


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    ci_arch = argv[1]
    template_path = argv[2] if len(argv) > 2 else "template.yaml"
    config_path = argv[3] if len(argv) > 3 else "samconfig.toml"
    with open(template_path, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    with open(config_path, "rb") as f:
        config = tomllib.load(f)

    default = template.get("Parameters", {}).get("Architecture", {}).get("Default")
    found = {f"{template_path} Parameters.Architecture.Default": default}
    for command in ("build", "deploy"):
        name = f"{config_path} [default.{command}.parameters]"
        section = config.get("default", {}).get(command, {}).get("parameters", {})
        found[name] = overrides(section, name).get("Architecture")

    errors = [f"{where} does not name Architecture" for where, arch in found.items() if arch is None]
    if len(set(found.values())) > 1:
        errors.append("the architectures disagree: " + ", ".join(f"{w} = {a}" for w, a in found.items()))
    if default != ci_arch:
        errors.append(f"the template default is {default}, CI builds {ci_arch}")
    for e in errors:
        print(f"check-architecture: {e}", file=sys.stderr)
    if not errors:
        print(f"check-architecture: build, deploy and the template default are {ci_arch}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
