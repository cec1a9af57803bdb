#!/usr/bin/env python3
"""Writes data/redis-<major.minor>.tsv from a Redis source tree's
src/config.c: every config Redis registers (createXxxConfig), with its
alias, its type and what the type allows, as Redis itself declares them;
whether it takes several arguments (MULTI_ARG_CONFIG), and the function
that judges its value beyond its type (a special config's setter, another's
is_valid function), which dbtune's findings implement by name.

Usage: scripts/gen-redis-keys.py VERSION CONFIG_C
  e.g. git -C redis show 7.2.4:src/config.c > /tmp/config.c
       scripts/gen-redis-keys.py 7.2.4 /tmp/config.c
"""
import re
import sys

version, path = sys.argv[1], sys.argv[2]
src = open(path, encoding="utf-8", errors="replace").read()

# configEnum NAME[] = { {"a", X}, {"b", Y}, {NULL, 0} };
enums = {}
for m in re.finditer(r"configEnum\s+(\w+)\[\]\s*=\s*\{(.*?)\};", src, re.S):
    enums[m.group(1)] = re.findall(r'\{\s*"([^"]+)"', m.group(2))


def args_of(call_start):
    """The top-level comma-separated arguments of the call at call_start."""
    i = src.index("(", call_start) + 1
    depth, cur, out = 0, "", []
    while True:
        c = src[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            if depth == 0:
                out.append(cur.strip())
                return out
            depth -= 1
        if c == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        elif c == '"':
            j = src.index('"', i + 1)
            while src[j - 1] == "\\":
                j = src.index('"', j + 1)
            cur += src[i : j + 1]
            i = j
        else:
            cur += c
        i += 1


rows = []
for m in re.finditer(r"\bcreate(\w+)Config\(\s*\"", src):
    kind = m.group(1)
    a = args_of(m.start())
    name = a[0].strip('"')
    alias = a[1].strip('"') if a[1] != "NULL" else ""
    flags = a[2]
    immutable = "IMMUTABLE_CONFIG" in flags
    hidden = "HIDDEN_CONFIG" in flags
    multi = "MULTI_ARG_CONFIG" in flags
    # The argument that names the value's own check, per macro.
    check_arg = {"Bool": 5, "String": 6, "SDS": 6, "Enum": 6, "Special": 3}.get(kind, 8)
    check = a[check_arg] if len(a) > check_arg and a[check_arg] != "NULL" else ""
    if kind == "Bool":
        typ, allows = "bool", "yes,no"
    elif kind in ("String", "SDS"):
        typ, allows = "string", ""
    elif kind == "Enum":
        typ, allows = "enum", ",".join(enums.get(a[3], []))
        if multi:
            typ = "enum-multi"
    elif kind == "Special":
        typ, allows = "special", ""
    else:
        # Numbers: (name, alias, flags, lower, upper, addr, default, num_flags, ...)
        lower, upper, num_flags = a[3], a[4], a[7]
        typ = "memory" if "MEMORY_CONFIG" in num_flags else "integer"
        if "PERCENT_CONFIG" in num_flags:
            typ += "-or-percent"
        allows = f"{lower}..{upper}"
    context = "immutable" if immutable else "modifiable"
    if hidden:
        context += ",hidden"  # not listed by CONFIG GET *, still read
    if multi:
        context += ",multi-arg"  # several arguments; one is split at spaces
    rows.append((name, typ, alias, allows, context, check))

# Names Redis still reads from a file and ignores.
dep = re.search(r"deprecated_configs\[\]\s*=\s*\{(.*?)\};", src, re.S)
for name in re.findall(r'\{\s*"([^"]+)"', dep.group(1) if dep else ""):
    rows.append((name, "deprecated", "", "", "ignored", ""))
# Directives the file parser handles itself (loadServerConfigFromString).
for name in re.findall(r'!strcasecmp\(argv\[0\],\s*"([a-z-]+)"\)(?:\s*&&\s*argc|\)\s*\{)', src):
    if name not in {r[0] for r in rows}:
        rows.append((name, "directive", "", "", "file", ""))

out = "data/redis-%s.tsv" % ".".join(version.split(".")[:2])
with open(out, "w") as f:
    f.write(f"# Redis {version} configs from src/config.c (createXxxConfig); regenerate with scripts/gen-redis-keys.py\n")
    f.write("# name\ttype\talias\tallows\tcontext (immutable: not by CONFIG SET; hidden: not in CONFIG GET *; multi-arg: several arguments)\tcheck (the function that judges the value beyond its type)\n")
    for r in sorted(rows):
        f.write("\t".join(r) + "\n")
print(f"wrote {out} ({len(rows)} configs)")
