#!/usr/bin/env python3
"""Generate powerstrip/canonical/engine_schema.json from moby's Go sources.

The gateway decodes hooked request bodies the way dockerd does (powerstrip/canonical), and for that it
needs the Engine API's structs as Go declares them: field names after JSON tags, types, pointers,
embedded structs. Those are facts of moby's source, so they are read from it rather than typed by hand:

    scripts/gen_engine_schema.py /path/to/moby.git v20.10.24 > powerstrip/canonical/engine_schema.json

The first argument is a moby git directory (bare or not); the files are read with ``git show TAG:PATH``.
What it understands of Go is what these type declarations use: struct types with tags, named types, aliases,
pointers, slices, arrays, maps, qualified names and embedded fields. Embedded fields are flattened with
encoding/json's rules (the shallowest field wins; at equal depth a tagged one; otherwise neither).
Types with their own UnmarshalJSON are listed in ``CUSTOM`` by what they accept.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass

# The Go files whose type declarations are read, by package path as Go code imports them.
PACKAGES: dict[str, list[str]] = {
    "github.com/docker/docker/api/types": ["api/types/types.go", "api/types/configs.go", "api/types/auth.go",
                                           "api/types/plugin.go", "api/types/plugin_device.go",
                                           "api/types/plugin_env.go", "api/types/plugin_mount.go",
                                           "api/types/plugin_responses.go", "api/types/client.go"],
    "github.com/docker/docker/api/types/container": ["api/types/container/config.go",
                                                     "api/types/container/host_config.go",
                                                     "api/types/container/container_update.go"],
    "github.com/docker/docker/api/types/mount": ["api/types/mount/mount.go"],
    "github.com/docker/docker/api/types/network": ["api/types/network/network.go"],
    "github.com/docker/docker/api/types/blkiodev": ["api/types/blkiodev/blkio.go"],
    "github.com/docker/docker/api/types/strslice": ["api/types/strslice/strslice.go"],
    "github.com/docker/docker/api/types/volume": ["api/types/volume/volume_create.go"],
    "github.com/docker/docker/api/types/swarm": [
        "api/types/swarm/common.go", "api/types/swarm/config.go", "api/types/swarm/container.go",
        "api/types/swarm/network.go", "api/types/swarm/node.go", "api/types/swarm/runtime.go",
        "api/types/swarm/secret.go", "api/types/swarm/service.go", "api/types/swarm/swarm.go",
        "api/types/swarm/task.go"],
    "github.com/docker/docker/api/types/swarm/runtime": ["api/types/swarm/runtime/plugin.pb.go"],
    "github.com/docker/docker/runconfig": ["runconfig/config_unix.go"],
    "github.com/docker/go-connections/nat": ["vendor/github.com/docker/go-connections/nat/nat.go"],
    "github.com/docker/go-units": ["vendor/github.com/docker/go-units/ulimit.go"],
}

# Go types that decode other than by their structure: what JSON they accept, in our schema's terms.
CUSTOM: dict[str, object] = {
    "strslice.StrSlice": "strslice",   # a string or an array of strings (UnmarshalJSON)
    "time.Duration": "int64",
    "time.Time": "string",             # RFC 3339 text (UnmarshalJSON)
    "os.FileMode": "uint32",
    "filters.Args": "any",             # its own UnmarshalJSON, two shapes
    "PluginInterfaceType": "string",    # "docker.volumedriver/1.0" (UnmarshalJSON)
    "runtime.PluginSpec": "any",       # protobuf-generated; decoded by swarmkit, not judged here
    "registry.NetIPNet": "string",
    "interface{}": "any",
    "json.RawMessage": "any",
}

# The request bodies dockerd decodes, by route (moby's api/server/router), and the Go type of each.
ENDPOINTS: list[dict[str, object]] = [
    {"method": "POST", "path": "/containers/create", "type": "runconfig.ContainerConfigWrapper",
     "legacy": "container-create"},
    {"method": "POST", "path": "/commit", "type": "runconfig.ContainerConfigWrapper", "legacy": "container-create"},
    {"method": "POST", "path": "/containers/*/start", "type": "container.HostConfig", "before": "1.24"},
    {"method": "POST", "path": "/containers/*/update", "type": "container.UpdateConfig"},
    {"method": "POST", "path": "/containers/*/exec", "type": "types.ExecConfig"},
    {"method": "POST", "path": "/exec/*/start", "type": "types.ExecStartCheck"},
    {"method": "POST", "path": "/networks/create", "type": "types.NetworkCreateRequest"},
    {"method": "POST", "path": "/networks/*/connect", "type": "types.NetworkConnect"},
    {"method": "POST", "path": "/networks/*/disconnect", "type": "types.NetworkDisconnect"},
    {"method": "POST", "path": "/volumes/create", "type": "volume.VolumeCreateBody"},
    {"method": "POST", "path": "/services/create", "type": "swarm.ServiceSpec"},
    {"method": "POST", "path": "/services/*/update", "type": "swarm.ServiceSpec"},
    {"method": "POST", "path": "/secrets/create", "type": "swarm.SecretSpec"},
    {"method": "POST", "path": "/secrets/*/update", "type": "swarm.SecretSpec"},
    {"method": "POST", "path": "/configs/create", "type": "swarm.ConfigSpec"},
    {"method": "POST", "path": "/configs/*/update", "type": "swarm.ConfigSpec"},
    {"method": "POST", "path": "/nodes/*/update", "type": "swarm.NodeSpec"},
    {"method": "POST", "path": "/swarm/init", "type": "swarm.InitRequest"},
    {"method": "POST", "path": "/swarm/join", "type": "swarm.JoinRequest"},
    {"method": "POST", "path": "/swarm/update", "type": "swarm.Spec"},
    {"method": "POST", "path": "/swarm/unlock", "type": "swarm.UnlockRequest"},
    {"method": "POST", "path": "/plugins/*/set", "type": "[]string"},
    {"method": "POST", "path": "/plugins/pull", "type": "types.PluginPrivileges"},
    {"method": "POST", "path": "/plugins/*/upgrade", "type": "types.PluginPrivileges"},
    {"method": "POST", "path": "/auth", "type": "types.AuthConfig"},
]

BASIC = {"bool", "string", "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32",
         "uint64", "uintptr", "float32", "float64", "byte", "rune"}
_TOKEN = re.compile(r'\s*(`[^`]*`|"(?:[^"\\]|\\.)*"|[A-Za-z_][A-Za-z0-9_]*|\d+|\.\.\.|\S)')


class GoSyntaxError(Exception):
    pass


@dataclass
class Field:
    go_name: str
    type: str          # a Go type expression as text, qualified (pkg.Name)
    tag: str | None    # the json tag's name part, None without a tag
    tagged: bool
    embedded: bool


def git_show(repo: str, tag: str, path: str) -> str:
    return subprocess.run(["git", "-C", repo, "show", f"{tag}:{path}"], check=True, capture_output=True,
                          text=True).stdout


def strip_comments(source: str) -> str:
    source = re.sub(r"/\*.*?\*/", " ", source, flags=re.S)
    out = []
    for line in source.splitlines():
        # a // inside a string or a tag is kept: cut only at a // outside quotes and backquotes
        quote = None
        for i, char in enumerate(line):
            if quote:
                if char == quote:
                    quote = None
            elif char in "\"`":
                quote = char
            elif line.startswith("//", i):
                line = line[:i]
                break
        out.append(line)
    return "\n".join(out)


def tokens(source: str) -> list[str]:
    result = []
    for line in source.splitlines():
        result.extend(_TOKEN.findall(line))
        result.append("\n")
    return result


class FileReader:
    """Type declarations of one Go file, with its import aliases resolved to package names."""

    def __init__(self, source: str, package_names: dict[str, str]) -> None:
        self.toks = tokens(strip_comments(source))
        self.pos = 0
        self.package = ""
        self.imports: dict[str, str] = {}  # alias -> package name as used in qualified type names
        self.package_names = package_names

    def peek(self, skip_newlines: bool = True) -> str:
        i = self.pos
        while skip_newlines and i < len(self.toks) and self.toks[i] == "\n":
            i += 1
        return self.toks[i] if i < len(self.toks) else ""

    def next(self, skip_newlines: bool = True) -> str:
        while skip_newlines and self.pos < len(self.toks) and self.toks[self.pos] == "\n":
            self.pos += 1
        tok = self.toks[self.pos]
        self.pos += 1
        return tok

    def declarations(self) -> dict[str, object]:
        found: dict[str, object] = {}
        while self.pos < len(self.toks):
            tok = self.next()
            if tok == "package":
                self.package = self.next()
            elif tok == "import":
                self._imports()
            elif tok == "type":
                if self.peek() == "(":
                    self.next()
                    while self.peek() != ")":
                        self._type_spec(found)
                    self.next()
                else:
                    self._type_spec(found)
            elif tok == "func":
                self._skip_func()
            if self.pos >= len(self.toks) - 1:
                break
        return found

    def _skip_func(self) -> None:
        """Past a function declaration: its signature (braces inside parentheses are types), then its body."""
        parens = depth = 0
        while self.pos < len(self.toks):
            tok = self.next(skip_newlines=False)
            if tok == "(":
                parens += 1
            elif tok == ")":
                parens -= 1
            elif tok == "{" and (parens == 0 or depth):
                depth += 1
            elif tok == "}" and depth:
                depth -= 1
                if depth == 0:
                    return

    def _imports(self) -> None:
        def one() -> None:
            tok = self.next()
            alias = None
            if not tok.startswith('"'):
                alias, tok = tok, self.next()
            path = json.loads(tok)
            name = self.package_names.get(path, path.rsplit("/", 1)[-1])
            self.imports[alias or name] = name

        if self.peek() == "(":
            self.next()
            while self.peek() != ")":
                one()
            self.next()
        else:
            one()

    def _type_spec(self, found: dict[str, object]) -> None:
        name = self.next()
        if self.peek() == "=":
            self.next()
        start = self.pos
        try:
            found[f"{self.package}.{name}"] = self._type()
        except GoSyntaxError:  # func and chan types: not JSON, and no body of ours uses them
            self.pos = start
            while self.toks[self.pos] != "\n":
                self.pos += 1

    def _qualify(self, name: str) -> str:
        if name in BASIC:
            return {"byte": "uint8", "rune": "int32"}.get(name, name)
        return f"{self.package}.{name}"

    def _type(self) -> object:
        tok = self.next()
        if tok == "*":
            return {"ptr": self._type()}
        if tok == "[":
            if self.peek() == "]":
                self.next()
                return {"slice": self._type()}
            size = self.next()
            if self.next() != "]":
                raise GoSyntaxError("array size")
            return {"array": [int(size), self._type()]}
        if tok == "map":
            if self.next() != "[":
                raise GoSyntaxError("map")
            key = self._type()
            if self.next() != "]":
                raise GoSyntaxError("map key")
            return {"map": [key, self._type()]}
        if tok == "struct":
            return self._struct()
        if tok == "interface":
            self.next()
            depth = 1
            while depth:
                t = self.next()
                depth += {"{": 1, "}": -1}.get(t, 0)
            return "interface{}"
        if tok == "func" or tok == "chan":
            raise GoSyntaxError(f"{tok} types are not JSON")
        if self.peek(skip_newlines=False) == ".":
            self.next()
            return f"{self.imports.get(tok, tok)}.{self.next()}"
        return self._qualify(tok)

    def _struct(self) -> object:
        if self.next() != "{":
            raise GoSyntaxError("struct {")
        fields: list[Field] = []
        while True:
            if self.peek() == "}":
                self.next()
                return {"struct": fields}
            line: list[str] = []
            start = self.pos
            while self.toks[self.pos] == "\n":
                self.pos += 1
            # a field line: names then a type then maybe a tag; or an embedded type (then maybe a tag)
            first = self.next()
            names = [first]
            embedded = False
            while self.peek(skip_newlines=False) == ",":
                self.next()
                names.append(self.next())
            nxt = self.peek(skip_newlines=False)
            if first == "*" or nxt in ("\n", "}") or nxt.startswith("`"):
                embedded = True
                self.pos = start
                while self.toks[self.pos] == "\n":
                    self.pos += 1
                typ = self._type()
                go_name = typ["ptr"] if isinstance(typ, dict) and "ptr" in typ else typ
                go_name = str(go_name).rsplit(".", 1)[-1]
                names = [go_name]
            elif nxt == ".":
                embedded = True
                self.pos = start
                while self.toks[self.pos] == "\n":
                    self.pos += 1
                typ = self._type()
                names = [str(typ).rsplit(".", 1)[-1]]
            else:
                typ = self._type()
            tag_text = self.peek(skip_newlines=False)
            tag_name, tagged = None, False
            if tag_text.startswith("`") or tag_text.startswith('"'):
                self.next()
                match = re.search(r'json:"([^"]*)"', tag_text.strip("`"))
                if match:
                    tagged = True
                    tag_name = match.group(1).split(",")[0]
            del line
            for name in names:
                fields.append(Field(name, typ, tag_name, tagged and tag_name != "", embedded))


def load_declarations(repo: str, tag: str) -> dict[str, object]:
    package_names = {path: path.rsplit("/", 1)[-1] for path in PACKAGES}
    package_names["github.com/docker/go-units"] = "units"
    declarations: dict[str, object] = {}
    for files in PACKAGES.values():
        for path in files:
            declarations.update(FileReader(git_show(repo, tag, path), package_names).declarations())
    return declarations


class SchemaBuilder:
    """Turns Go declarations into the schema's JSON-level types, flattening embedded structs."""

    def __init__(self, declarations: dict[str, object]) -> None:
        self.decl = declarations
        self.types: dict[str, object] = {}

    def ref(self, typ: object, package: str) -> object:
        if isinstance(typ, dict):
            if "ptr" in typ:
                inner = self.ref(typ["ptr"], package)
                return {"ptr": inner}
            if "slice" in typ:
                if typ["slice"] == "uint8":
                    return "bytes"  # []byte: base64 text
                return {"slice": self.ref(typ["slice"], package)}
            if "array" in typ:
                return {"array": [typ["array"][0], self.ref(typ["array"][1], package)]}
            if "map" in typ:
                return {"map": self.ref(typ["map"][1], package)}
            if "struct" in typ:
                return self.struct(typ["struct"], package)
        name = str(typ)
        if name in BASIC or name in ("int", "uint"):
            return {"int": "int64", "uint": "uint64"}.get(name, name)
        if name in CUSTOM:
            return CUSTOM[name]
        short = name.split(".", 1)[1] if "." in name else name
        if short in CUSTOM:
            return CUSTOM[short]
        if name not in self.decl:
            raise KeyError(f"unknown Go type {name}")
        target = self.decl[name]
        if isinstance(target, dict) and "struct" in target:
            if name not in self.types:
                self.types[name] = "pending"
                self.types[name] = self.struct(target["struct"], name.split(".")[0])
            return {"ref": name}
        return self.ref(target, name.split(".")[0])

    def struct(self, fields: list[Field], package: str) -> object:
        """The JSON fields of a struct: encoding/json's typeFields, embedded structs flattened."""
        candidates: list[tuple[str, int, bool, object, str]] = []  # name, depth, tagged, type, via

        def walk(fields: list[Field], depth: int, via: str, seen: set[str]) -> None:
            for field in fields:
                if field.tag == "-":
                    continue
                exported = field.go_name[:1].isupper()
                if field.embedded and not field.tagged:
                    base = field.type["ptr"] if isinstance(field.type, dict) and "ptr" in field.type else field.type
                    decl = self.decl.get(str(base))
                    if isinstance(decl, dict) and "struct" in decl:
                        if str(base) not in seen:
                            walk(decl["struct"], depth + 1, f"{via}.{field.go_name}".lstrip("."),
                                 seen | {str(base)})
                        continue
                if not exported:
                    continue
                name = field.tag if field.tag else field.go_name
                candidates.append((name, depth, field.tagged, field.type, via))

        walk(fields, 0, "", set())
        by_name: dict[str, list[tuple[str, int, bool, object, str]]] = {}
        for candidate in candidates:
            by_name.setdefault(candidate[0], []).append(candidate)
        result = []
        for name, group in by_name.items():
            shallowest = min(c[1] for c in group)
            group = [c for c in group if c[1] == shallowest]
            if len(group) > 1:
                tagged = [c for c in group if c[2]]
                if len(tagged) != 1:
                    continue  # ambiguous at equal depth: encoding/json ignores the name
                group = tagged
            _, depth, _, typ, via = group[0]
            entry: dict[str, object] = {"name": name, "type": self.ref(typ, package)}
            if via:
                entry["via"] = via
            result.append(entry)
        return {"struct": result}


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    repo, tag = argv[1], argv[2]
    builder = SchemaBuilder(load_declarations(repo, tag))
    endpoints = []
    for endpoint in ENDPOINTS:
        typ = endpoint["type"]
        go_type = {"slice": "string"} if typ == "[]string" else typ
        endpoints.append({**endpoint, "type": builder.ref(go_type, "")})
    schema = {"source": f"moby {tag}, generated by scripts/gen_engine_schema.py", "endpoints": endpoints,
              "types": dict(sorted(builder.types.items()))}
    json.dump(schema, sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
