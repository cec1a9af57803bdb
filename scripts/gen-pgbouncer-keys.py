#!/usr/bin/env python3
"""Writes data/pgbouncer-<major.minor>.tsv from a PgBouncer source tree's
src/main.c: every [pgbouncer] setting (bouncer_params, CF_ABS), its type as
PgBouncer declares it (CF_INT, CF_UINT, CF_STR, CF_TIME_USEC, a lookup
table and its values), whether a reload applies it, and its default; and the
sections PgBouncer knows.

Usage: scripts/gen-pgbouncer-keys.py VERSION MAIN_C
"""
import re
import sys

version, path = sys.argv[1], sys.argv[2]
src = open(path, encoding="utf-8", errors="replace").read()

lookups = {}
for m in re.finditer(r"struct CfLookup\s+(\w+)\s*\[\]\s*=\s*\{(.*?)\};", src, re.S):
    lookups[m.group(1)] = re.findall(r'\{\s*"([^"]+)"', m.group(2))

params = re.search(r"struct CfKey bouncer_params\s*\[\]\s*=\s*\{(.*?)\n\};", src, re.S).group(1)
rows = []
for m in re.finditer(r'CF_ABS\(\s*"([^"]+)"\s*,\s*(.*?)\s*,\s*(\w+)\s*,\s*([^,]+?)\s*,\s*(NULL|"(?:[^"\\]|\\.)*"|\w+)\s*\)', params):
    name, cftype, _var, flags, default = m.groups()
    lk = re.match(r"CF_LOOKUP\((\w+)\)", cftype)
    if lk:
        typ, allows = "lookup", ",".join(lookups.get(lk.group(1), []))
    else:
        typ = {
            "CF_INT": "int",
            "CF_UINT": "uint",
            "CF_STR": "string",
            "CF_TIME_USEC": "time",
            "CF_TIME_DOUBLE": "time",
            "DEFER_OPS": "int",
        }.get(cftype, "string")
        allows = ""
    reload = "restart" if "CF_NO_RELOAD" in flags else "reload"
    if default == "NULL":
        default = ""
    elif not default.startswith('"'):
        default = f"({default})"  # a build-time macro
    rows.append((name, typ, allows, reload, default.strip('"')))

sects = re.search(r"struct CfSect config_sects\s*\[\]\s*=\s*\{(.*?)\n\};", src, re.S)
sections = re.findall(r'\.sect_name\s*=\s*"([^"]+)"', sects.group(1)) if sects else []

out = "data/pgbouncer-%s.tsv" % ".".join(version.split(".")[:2])
with open(out, "w") as f:
    f.write(f"# PgBouncer {version} [pgbouncer] settings from src/main.c (bouncer_params); regenerate with scripts/gen-pgbouncer-keys.py\n")
    f.write(f"# sections: {','.join(sections)}\n")
    f.write("# name\ttype\tallows\tapplies\tdefault\n")
    for r in sorted(rows):
        f.write("\t".join(r) + "\n")
print(f"wrote {out} ({len(rows)} settings; sections {', '.join(sections)})")
