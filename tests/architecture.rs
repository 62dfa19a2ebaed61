//! The library crates' shape: their public API against a snapshot, and
//! modules that never import each other in a circle.
//!
//! Each crate's surface is what its `lib.rs` exports, followed to the
//! definitions: items with their signatures, public fields and variants,
//! the public methods and trait impls of exported types. A change to it
//! fails this test until the snapshot (`crates/<crate>/public-api.txt`) is
//! updated on purpose:
//!
//! ```text
//! UPDATE_PUBLIC_API=1 cargo test -p dynamo-suite --test architecture
//! ```
//!
//! Items marked `#[doc(hidden)]` or `#[cfg(test)]` are not part of it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use quote::ToTokens;
use syn::{Attribute, ImplItem, Item, UseTree, Visibility};

/// The crates whose surface is checked.
const CRATES: [&str; 4] = [
    "dynamo-datafusion",
    "dynamo-connector",
    "dynamo-ballista",
    "dynamo-mirror",
];

type ModPath = Vec<String>;

/// One crate's sources, parsed on demand.
struct Sources {
    src: PathBuf,
    files: BTreeMap<ModPath, syn::File>,
}

impl Sources {
    fn new(krate: &Path) -> Self {
        let src = krate.join("src");
        let mut files = BTreeMap::new();
        collect(&src, &src, &mut files);
        Self { src, files }
    }

    fn module(&self, path: &ModPath) -> &syn::File {
        self.files.get(path).unwrap_or_else(|| {
            panic!(
                "module {} not found under {}",
                path.join("::"),
                self.src.display()
            )
        })
    }
}

/// Parses every `.rs` file under `dir`, keyed by module path.
fn collect(src: &Path, dir: &Path, files: &mut BTreeMap<ModPath, syn::File>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read src")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(src, &path, files);
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        // A crate with a library and a binary: the library is the root.
        if path == src.join("main.rs") && src.join("lib.rs").exists() {
            continue;
        }
        let rel = path
            .strip_prefix(src)
            .expect("under src")
            .with_extension("");
        let mut module: ModPath = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if matches!(
            module.last().map(String::as_str),
            Some("mod" | "lib" | "main")
        ) {
            module.pop();
        }
        let text = std::fs::read_to_string(&path).expect("read source");
        let file = syn::parse_file(&text)
            .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
        files.insert(module, file);
    }
}

fn hidden(attrs: &[Attribute]) -> bool {
    attrs.iter().any(|a| {
        let text = a.to_token_stream().to_string();
        text.contains("doc (hidden)") || text.contains("cfg (test)")
    })
}

fn is_pub(v: &Visibility) -> bool {
    matches!(v, Visibility::Public(_))
}

fn tokens(t: &impl ToTokens) -> String {
    t.to_token_stream().to_string()
}

/// `use` trees flattened to (path, name as imported, name as exported).
fn flatten(tree: &UseTree, prefix: &mut ModPath, out: &mut Vec<(ModPath, String, String)>) {
    match tree {
        UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            flatten(&p.tree, prefix, out);
            prefix.pop();
        }
        UseTree::Name(n) => {
            let name = n.ident.to_string();
            out.push((prefix.clone(), name.clone(), name));
        }
        UseTree::Rename(r) => out.push((prefix.clone(), r.ident.to_string(), r.rename.to_string())),
        UseTree::Glob(_) => out.push((prefix.clone(), "*".into(), "*".into())),
        UseTree::Group(g) => g.items.iter().for_each(|t| flatten(t, prefix, out)),
    }
}

/// The module a `use` path starting in module `here` points into, or
/// `None` for another crate.
fn resolve(here: &ModPath, path: &ModPath, s: &Sources) -> Option<ModPath> {
    let mut out = here.clone();
    for (i, seg) in path.iter().enumerate() {
        match seg.as_str() {
            "crate" if i == 0 => out.clear(),
            "self" => {}
            "super" => {
                out.pop();
            }
            name => {
                let mut next = out.clone();
                next.push(name.to_string());
                if !s.files.contains_key(&next) {
                    return None;
                }
                out = next;
            }
        }
    }
    Some(out)
}

/// The API lines of item `name` as found from module `module`.
fn describe(s: &Sources, module: &ModPath, name: &str, shown: &str, out: &mut Vec<String>) {
    let file = s.module(module);
    let before = out.len();
    for item in &file.items {
        let line = match item {
            Item::Macro(m) if tokens(&m.mac.tokens).contains(&format!("struct {name} ")) => {
                // A struct a macro defines (DataFusion's `extensions_options!`):
                // its public fields, as the macro declares them.
                out.push(format!("struct {shown} (by {}!)", tokens(&m.mac.path)));
                continue;
            }
            Item::Struct(i) if i.ident == name => {
                out.push(format!("struct {shown}{}", tokens(&i.generics)));
                for (n, f) in i.fields.iter().enumerate() {
                    if is_pub(&f.vis) && !hidden(&f.attrs) {
                        let field = f.ident.as_ref().map_or(n.to_string(), ToString::to_string);
                        out.push(format!("struct {shown}.{field}: {}", tokens(&f.ty)));
                    }
                }
                continue;
            }
            Item::Enum(i) if i.ident == name => {
                out.push(format!("enum {shown}{}", tokens(&i.generics)));
                for v in &i.variants {
                    let fields: Vec<String> = v
                        .fields
                        .iter()
                        .map(|f| {
                            let ty = tokens(&f.ty);
                            f.ident
                                .as_ref()
                                .map_or(ty.clone(), |n| format!("{n}: {ty}"))
                        })
                        .collect();
                    let fields = match &v.fields {
                        syn::Fields::Unit => String::new(),
                        syn::Fields::Named(_) => format!(" {{ {} }}", fields.join(", ")),
                        syn::Fields::Unnamed(_) => format!("({})", fields.join(", ")),
                    };
                    out.push(format!("enum {shown}::{}{fields}", v.ident));
                }
                continue;
            }
            Item::Fn(i) if i.sig.ident == name => {
                // The module path it is shown under, as for a function
                // defined in that module.
                let path = shown.strip_suffix(name).unwrap_or_default();
                format!("{path}{}", tokens(&i.sig))
            }
            Item::Const(i) if i.ident == name => format!("const {shown}: {}", tokens(&i.ty)),
            Item::Static(i) if i.ident == name => format!("static {shown}: {}", tokens(&i.ty)),
            Item::Type(i) if i.ident == name => format!("type {shown} = {}", tokens(&i.ty)),
            Item::Trait(i) if i.ident == name => {
                out.push(format!("trait {shown}"));
                for t in &i.items {
                    if let syn::TraitItem::Fn(f) = t {
                        out.push(format!("trait {shown}: {}", tokens(&f.sig)));
                    }
                }
                continue;
            }
            Item::Mod(i) if i.ident == name => {
                let mut inner = module.clone();
                inner.push(name.to_string());
                exports(s, &inner, &format!("{shown}::"), out);
                continue;
            }
            _ => continue,
        };
        out.push(line);
        return;
    }
    if out.len() > before {
        return;
    }
    // Not defined here: follow this module's imports.
    for item in &file.items {
        let Item::Use(u) = item else { continue };
        let mut found = Vec::new();
        flatten(&u.tree, &mut Vec::new(), &mut found);
        for (path, imported, as_name) in found {
            if as_name != name {
                continue;
            }
            if imported == "self" {
                let target = resolve(module, &path, s).expect("a module of this crate");
                exports(s, &target, &format!("{shown}::"), out);
                return;
            }
            match resolve(module, &path, s) {
                Some(target) => describe(s, &target, &imported, shown, out),
                None => out.push(format!("use {shown} = {}::{imported}", path.join("::"))),
            }
            return;
        }
    }
    panic!(
        "{shown}: no definition of '{name}' in module {}",
        module.join("::")
    );
}

/// Everything module `module` makes public, with `prefix` before each name.
fn exports(s: &Sources, module: &ModPath, prefix: &str, out: &mut Vec<String>) {
    let file = s.module(module);
    for item in &file.items {
        match item {
            Item::Use(u) if is_pub(&u.vis) && !hidden(&u.attrs) => {
                let mut found = Vec::new();
                flatten(&u.tree, &mut Vec::new(), &mut found);
                for (path, imported, as_name) in found {
                    let shown = format!("{prefix}{as_name}");
                    match (imported.as_str(), resolve(module, &path, s)) {
                        ("self", Some(target)) => exports(s, &target, &format!("{shown}::"), out),
                        (_, Some(target)) => describe(s, &target, &imported, &shown, out),
                        (_, None) => {
                            out.push(format!("use {shown} = {}::{imported}", path.join("::")))
                        }
                    }
                }
            }
            Item::Mod(m) if is_pub(&m.vis) && !hidden(&m.attrs) => {
                let name = m.ident.to_string();
                describe(s, module, &name, &format!("{prefix}{name}"), out);
            }
            Item::Struct(i) if is_pub(&i.vis) && !module.is_empty() && !hidden(&i.attrs) => {
                describe(
                    s,
                    module,
                    &i.ident.to_string(),
                    &format!("{prefix}{}", i.ident),
                    out,
                )
            }
            Item::Enum(i) if is_pub(&i.vis) && !module.is_empty() && !hidden(&i.attrs) => describe(
                s,
                module,
                &i.ident.to_string(),
                &format!("{prefix}{}", i.ident),
                out,
            ),
            Item::Fn(i) if is_pub(&i.vis) && !module.is_empty() && !hidden(&i.attrs) => {
                out.push(format!("{prefix}{}", tokens(&i.sig)))
            }
            Item::Const(i) if is_pub(&i.vis) && !module.is_empty() && !hidden(&i.attrs) => {
                out.push(format!("const {prefix}{}: {}", i.ident, tokens(&i.ty)))
            }
            _ => {}
        }
    }
}

/// Public methods and trait impls of the exported types, from every file.
fn impls(s: &Sources, types: &BTreeSet<String>, out: &mut Vec<String>) {
    fn walk(items: &[Item], types: &BTreeSet<String>, out: &mut Vec<String>) {
        for item in items {
            match item {
                Item::Mod(m) if !hidden(&m.attrs) => {
                    if let Some((_, inner)) = &m.content {
                        walk(inner, types, out);
                    }
                }
                Item::Impl(i) if !hidden(&i.attrs) => {
                    let syn::Type::Path(p) = i.self_ty.as_ref() else {
                        continue;
                    };
                    let Some(last) = p.path.segments.last() else {
                        continue;
                    };
                    let name = last.ident.to_string();
                    if !types.contains(&name) {
                        continue;
                    }
                    if let Some((_, t, _)) = &i.trait_ {
                        out.push(format!("impl {} for {}", tokens(t), tokens(&i.self_ty)));
                        continue;
                    }
                    for m in &i.items {
                        if let ImplItem::Fn(f) = m
                            && is_pub(&f.vis)
                            && !hidden(&f.attrs)
                        {
                            out.push(format!("impl {name}: {}", tokens(&f.sig)));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    for file in s.files.values() {
        walk(&file.items, types, out);
    }
}

/// The surface of the crate at `krate`, one line per item, sorted.
fn surface(krate: &Path) -> String {
    let s = Sources::new(krate);
    let mut lines = Vec::new();
    exports(&s, &Vec::new(), "", &mut lines);
    let types: BTreeSet<String> = lines
        .iter()
        .filter_map(|l| {
            let rest = l
                .strip_prefix("struct ")
                .or_else(|| l.strip_prefix("enum "))?;
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            Some(name)
        })
        .collect();
    impls(&s, &types, &mut lines);
    let unique: BTreeSet<String> = lines.into_iter().collect();
    unique.into_iter().map(|l| l + "\n").collect()
}

#[test]
fn the_public_api_is_the_snapshot() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let update = std::env::var_os("UPDATE_PUBLIC_API").is_some();
    let mut changed = Vec::new();
    for name in CRATES {
        let krate = root.join("crates").join(name);
        let now = surface(&krate);
        assert!(
            now.lines().count() > 10,
            "{name}: the surface was not found:\n{now}"
        );
        let snapshot = krate.join("public-api.txt");
        if update {
            std::fs::write(&snapshot, &now).expect("write snapshot");
            continue;
        }
        let before = std::fs::read_to_string(&snapshot).unwrap_or_default();
        if before != now {
            let (old, new): (BTreeSet<&str>, BTreeSet<&str>) =
                (before.lines().collect(), now.lines().collect());
            let gone: Vec<_> = old.difference(&new).map(|l| format!("- {l}")).collect();
            let added: Vec<_> = new.difference(&old).map(|l| format!("+ {l}")).collect();
            changed.push(format!(
                "{name}:\n{}\n{}",
                gone.join("\n"),
                added.join("\n")
            ));
        }
    }
    assert!(
        changed.is_empty(),
        "the public API changed; if on purpose, run UPDATE_PUBLIC_API=1 cargo test -p dynamo-suite \
         --test architecture and commit the snapshots:\n{}",
        changed.join("\n")
    );
}

/// Every module a file's `use crate::…` items name (the longest known
/// module prefix of each path), test code left out.
fn imports(s: &Sources, module: &ModPath, items: &[Item], out: &mut BTreeSet<ModPath>) {
    for item in items {
        match item {
            Item::Use(u) if !hidden(&u.attrs) => {
                let mut found = Vec::new();
                flatten(&u.tree, &mut Vec::new(), &mut found);
                for (path, imported, _) in found {
                    if path.first().map(String::as_str) != Some("crate") {
                        continue;
                    }
                    let mut full = path[1..].to_vec();
                    full.push(imported);
                    let target = (0..=full.len())
                        .rev()
                        .map(|k| full[..k].to_vec())
                        .find(|m| s.files.contains_key(m))
                        .unwrap_or_default();
                    if &target != module && !target.is_empty() {
                        out.insert(target);
                    }
                }
            }
            Item::Mod(m) if !hidden(&m.attrs) => {
                if let Some((_, inner)) = &m.content {
                    imports(s, module, inner, out);
                }
            }
            _ => {}
        }
    }
}

/// A cycle in `graph`, as the modules along it, if there is one.
fn find_cycle(graph: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Option<Vec<String>> {
    fn visit(
        node: &ModPath,
        graph: &BTreeMap<ModPath, BTreeSet<ModPath>>,
        stack: &mut Vec<ModPath>,
        done: &mut BTreeSet<ModPath>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle: Vec<String> = stack[at..].iter().map(|m| m.join("::")).collect();
            cycle.push(node.join("::"));
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(node.clone());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

/// Each module of the crate at `krate` with the modules it imports.
fn module_graph(krate: &Path) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    let s = Sources::new(krate);
    // Test support (fuzz oracles, planner fixtures) may use anything.
    let support = |m: &ModPath| {
        m.iter()
            .any(|p| p == "fuzzing" || p == "fixture" || p == "tests")
    };
    let mut graph = BTreeMap::new();
    for (module, file) in &s.files {
        if module.is_empty() || support(module) {
            continue;
        }
        let mut out = BTreeSet::new();
        imports(&s, module, &file.items, &mut out);
        out.retain(|m| !support(m));
        graph.insert(module.clone(), out);
    }
    graph
}

#[test]
fn modules_never_import_each_other_in_a_circle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for name in [
        "dynamo-datafusion",
        "dynamo-connector",
        "dynamo-sql",
        "dynamo-ballista",
    ] {
        let files = module_graph(&root.join("crates").join(name));
        assert!(files.len() >= 2, "{name}: the modules were not found");
        if let Some(cycle) = find_cycle(&files) {
            panic!(
                "{name}: modules import each other in a circle: {}",
                cycle.join(" -> ")
            );
        }
        // The pipeline's folders, too: plan never reaches read, and so on.
        let mut folders: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
        for (module, deps) in &files {
            let top = vec![module[0].clone()];
            let entry = folders.entry(top.clone()).or_default();
            entry.extend(
                deps.iter()
                    .map(|d| vec![d[0].clone()])
                    .filter(|d| d != &top),
            );
        }
        if let Some(cycle) = find_cycle(&folders) {
            panic!(
                "{name}: module folders import each other in a circle: {}",
                cycle.join(" -> ")
            );
        }
    }
}

/// The names at `dynamo_datafusion`'s root: what a newcomer meets first.
/// Everything else lives in a named module (`exec`, `read`, `schema`, …).
#[test]
fn the_library_root_has_at_most_thirty_names() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/dynamo-datafusion");
    let surface = surface(&root);
    let mut names = BTreeSet::new();
    for line in surface.lines().filter(|l| !l.starts_with("impl ")) {
        // `kind name…`, `kind name.field…`, `kind name::Variant…`, or a
        // module's item as `module::kind name…`.
        if line.split(' ').next().is_some_and(|w| w.contains("::")) {
            continue;
        }
        let words: Vec<&str> = line.split(' ').collect();
        let kind_words = usize::from(words.first() == Some(&"async")) + 1;
        let Some(name) = words.get(kind_words) else {
            continue;
        };
        let name: String = name
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let module = words[kind_words].starts_with(&format!("{name}::"))
            && name.chars().next().is_some_and(char::is_lowercase);
        if !module {
            names.insert(name);
        }
    }
    assert!(
        names.len() <= 30,
        "{} names at the root (at most 30): {names:?}",
        names.len()
    );
    assert!(names.contains("DynamoTableProvider") && names.contains("dynamo_session"));
}
