#!/usr/bin/env python3
"""Checks the import rules of ARCHITECTURE.md in app/src and names each
offending path with its file and line. Exit status 1 on any violation.

- The kernel imports no capability.
- Capabilities build on each other in one direction (CAPABILITIES, in order):
  a capability may use itself, the kernel and the capabilities before it.
- Domain files (everything of a capability that is not types, rpc or pages)
  never use pages: no `pages` module, no layout, no shared widgets.
- Pages use their own capability's types, rpc and pages, and only the types
  and rpc of other capabilities: never another capability's domain.
- Types (wire types shared with the browser) use only types and the kernel.
"""
import os
import re
import sys

# The order capabilities build on each other; a later one may use an earlier one.
CAPABILITIES = ['accounts', 'teams', 'tokens', 'audit', 'datasets', 'training', 'registry', 'endpoints', 'approvals', 'budgets', 'webhooks', 'layout']
PAGE_FILES = {'pages', 'uploader'}  # file roles that hold components
KERNEL_UI = {'widgets'}  # kernel modules that are UI

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'app', 'src')
PATH = re.compile(r'(?<![\w:])crate::([a-z_]+)(?:::([a-z_]+))?')
GROUP = re.compile(r'use crate::\{')


def role(parts):
    """(capability or 'kernel' or None, file role) of a file's path parts."""
    if len(parts) == 1:
        return None, 'root'
    cap = parts[0]
    name = parts[1][:-3] if parts[1].endswith('.rs') else parts[1]
    if name == 'mod':
        return cap, 'mod'
    if name in PAGE_FILES:
        return cap, 'pages'
    if name in ('types', 'rpc'):
        return cap, name
    return cap, 'domain'


def strip_comments(line):
    i = line.find('//')
    return line if i < 0 else line[:i]


def check():
    problems = []
    for dirpath, _, files in os.walk(ROOT):
        for f in sorted(files):
            if not f.endswith('.rs'):
                continue
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, ROOT)
            parts = rel.split(os.sep)
            cap, kind = role(parts)
            if cap is None or kind == 'mod':
                continue  # lib.rs composes the app; mod.rs only declares modules
            if cap not in CAPABILITIES and cap != 'kernel':
                problems.append(f'app/src/{rel}: folder `{cap}` is not a known capability (add it to CAPABILITIES in order)')
                continue
            with open(path) as fh:
                for n, line in enumerate(fh, 1):
                    code = strip_comments(line)
                    if GROUP.search(code):
                        problems.append(f'app/src/{rel}:{n}: `use crate::{{…}}` hides what is imported; name each path')
                    for m in PATH.finditer(code):
                        target, module = m.group(1), m.group(2)
                        why = rule(cap, kind, target, module)
                        if why:
                            problems.append(f'app/src/{rel}:{n}: `{m.group(0)}`: {why}\n    {line.strip()}')
    return problems


def rule(cap, kind, target, module):
    if target == 'kernel':
        if kind in ('domain', 'types') and module in KERNEL_UI and cap != 'kernel':
            return f'{kind} code does not use the shared widgets'
        return None
    if target not in CAPABILITIES:
        return None  # crate-level items (the shell, the app)
    if cap == 'kernel':
        return 'the kernel imports no capability'
    if CAPABILITIES.index(target) > CAPABILITIES.index(cap):
        return f'`{cap}` comes before `{target}` and may not use it (capabilities build in one direction)'
    if kind == 'types' and module not in ('types', None):
        return 'wire types use only types and the kernel'
    if kind in ('domain', 'rpc') and (module == 'pages' or target == 'layout'):
        return f'{kind} code never uses pages'
    if kind == 'pages' and target != cap and module not in ('types', 'rpc'):
        return f'pages use only the types and rpc of another capability, not `{module}`'
    return None


if __name__ == '__main__':
    found = check()
    for p in found:
        print(p)
    if found:
        print(f'\n{len(found)} import rule violation(s); the rules are in ARCHITECTURE.md', file=sys.stderr)
        sys.exit(1)
    print('imports: every file keeps the rules of ARCHITECTURE.md')
