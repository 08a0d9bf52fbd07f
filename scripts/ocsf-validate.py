#!/usr/bin/env python3
"""Validates OCSF records (JSON lines) against the OCSF schema version each declares.

The schema comes from the ocsf-json-schema package (PyPI), the checking from jsonschema
(Draft 2020-12): neither is revenant's. Prints one line per invalid record and exits 1
when any is invalid, 2 when no record was read.
"""
import json
import sys

from jsonschema import Draft202012Validator
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

schemas, validators = {}, {}


def validator(version, class_uid, profiles):
    key = (version, class_uid, tuple(profiles))
    if key not in validators:
        if version not in schemas:
            schemas[version] = OcsfJsonSchemaEmbedded(get_ocsf_schema(version=version))
        s = schemas[version]
        name = s.lookup_class_name_from_uid(class_uid=class_uid)
        validators[key] = Draft202012Validator(s.get_class_schema(class_name=name, profiles=list(profiles)))
    return validators[key]


def main(paths):
    seen = bad = 0
    by_class = {}
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line or not line.startswith("{"):
                    continue
                rec = json.loads(line)
                if "class_uid" not in rec:
                    continue   # not an OCSF record (a jsonl export's other rows)
                seen += 1
                meta = rec.get("metadata", {})
                v = validator(meta.get("version", "?"), rec["class_uid"], meta.get("profiles", []))
                errors = sorted(v.iter_errors(rec), key=lambda e: list(e.path))
                by_class[rec["class_uid"]] = by_class.get(rec["class_uid"], 0) + 1
                if errors:
                    bad += 1
                    for e in errors[:5]:
                        where = "/".join(str(p) for p in e.absolute_path) or "(record)"
                        print(f"{path}:{n}: class {rec['class_uid']}: {where}: {e.message[:300]}")
    print(f"{seen} records, {bad} invalid; by class: {dict(sorted(by_class.items()))}", file=sys.stderr)
    if seen == 0:
        return 2
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
