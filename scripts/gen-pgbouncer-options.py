#!/usr/bin/env python3
"""Writes data/pgbouncer-options.tsv: for each PgBouncer release, the
options a [databases] connection string and a [users] line take, as that
release's src/loader.c reads them (parse_database, parse_user):

  port     atoi(); 0 (no leading digits) is refused ("invalid port")
  int      atoi(); anything is taken, the leading digits or 0
  lookup   a lookup table (cf_set_lookup, any case); another value is refused
  string   taken as written

and the database names the release reserves (check_reserved_database in
src/util.c from 1.20, a check in parse_database before). An option not listed is refused ("unrecognized connection
parameter", "unrecognized user parameter"), and so is a line whose
key=value pairs do not parse (no `=`, an empty value, an open quote).

Usage: scripts/gen-pgbouncer-options.py GIT_DIR TAG...
  e.g. scripts/gen-pgbouncer-options.py pgbouncer.git pgbouncer_1_18_0 ... pgbouncer_1_24_1
"""
import re
import subprocess
import sys


def show(git, tag, path):
    r = subprocess.run(["git", "--git-dir", git, "show", f"{tag}:{path}"], capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else ""


def function(src, name):
    m = re.search(r"^bool " + name + r"\(.*?^}", src, re.S | re.M)
    return m.group(0) if m else ""


def lookups(main_c):
    out = {}
    for m in re.finditer(r"struct CfLookup\s+(\w+)\s*\[\]\s*=\s*\{(.*?)\};", main_c, re.S):
        out[m.group(1)] = re.findall(r'\{\s*"([^"]+)"', m.group(2))
    return out


def options(body, tables):
    """(name, kind, allows) of each `strcmp("name", key)` branch."""
    # The lookup variable each CfValue points at its table.
    extra = dict(re.findall(r"(\w+)\.extra\s*=\s*\(const void \*\)(\w+);", body))
    out = []
    branches = re.split(r'(?=strcmp\("[a-z_]+", key\))', body)
    for b in branches[1:]:
        name = re.match(r'strcmp\("([a-z_]+)", key\)', b).group(1)
        code = b.split("} else", 1)[0]
        lk = re.search(r"cf_set_lookup\(&(\w+),", code)
        if name == "port":
            out.append((name, "port", ""))
        elif lk:
            table = extra.get(lk.group(1), "")
            out.append((name, "lookup", ",".join(tables.get(table, []))))
        elif "atoi(" in code:
            out.append((name, "int", ""))
        else:
            out.append((name, "string", ""))
    return out


def main():
    git, tags = sys.argv[1], sys.argv[2:]
    rows = []
    for tag in tags:
        release = ".".join(tag.split("_")[1:3])
        loader = show(git, tag, "src/loader.c")
        tables = lookups(show(git, tag, "src/main.c"))
        for section, fn in [("databases", "parse_database"), ("users", "parse_user")]:
            for name, kind, allows in options(function(loader, fn), tables):
                rows.append((release, section, name, kind, allows))
        # Reserved names: check_reserved_database (1.20+), or a check of its
        # own in parse_database before that.
        util = show(git, tag, "src/util.c")
        reserved = re.findall(r'strcmp\(value, "(\w+)"\) == 0', function(util, "check_reserved_database"))
        reserved += re.findall(r'strcmp\(name, "(\w+)"\) == 0\) \{\s*log_error\("database name \\"%s\\" is reserved"',
                               function(loader, "parse_database"))
        for name in sorted(set(reserved)):
            rows.append((release, "databases", name, "reserved", ""))
        print(f"{tag}: {sum(1 for r in rows if r[0] == release)} rows", file=sys.stderr)
    with open("data/pgbouncer-options.tsv", "w") as f:
        f.write("# PgBouncer [databases] and [users] options per release, from src/loader.c (parse_database,\n"
                "# parse_user) and src/util.c (check_reserved_database) at each release tag;\n"
                f"# regenerate with scripts/gen-pgbouncer-options.py (tags: {' '.join(tags)}).\n")
        f.write("# release\tsection\tname\tkind\tallows\n")
        for r in rows:
            f.write("\t".join(r) + "\n")


if __name__ == "__main__":
    main()
