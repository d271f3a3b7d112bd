//! Templates: minijinja with strict undefined variables and no auto-escaping (we write config
//! files and shell, not HTML). All files under `templates/` are loaded and syntax-checked up
//! front; every template a run needs is rendered for every selected host before any host is
//! touched, so an undefined variable stops the run with the template, line and host.

mod ansible;
mod lookup;
mod yaml_dump;

use crate::error::Diagnostic;
use minijinja::value::{Enumerator, Object, ObjectRepr};
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub struct Templates {
    env: Environment<'static>,
    dir: PathBuf,
    sources: HashMap<String, String>,
    /// Values `lookup()` read from a secret source, not yet taken ([`Templates::take_secret_lookups`]).
    secret_lookups: lookup::Found,
}

/// A rendering failure, located in a template file or an inline string.
#[derive(Debug, Clone)]
pub struct RenderError {
    /// Template name (path below `templates/`), or None for an inline string.
    pub template: Option<String>,
    pub line: Option<usize>,
    /// Byte range of the failing expression in the template source.
    pub range: Option<std::ops::Range<usize>>,
    pub message: String,
}

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.template, self.line) {
            (Some(t), Some(l)) => write!(f, "templates/{t}:{l}: {}", self.message),
            (Some(t), None) => write!(f, "templates/{t}: {}", self.message),
            (None, Some(l)) => write!(f, "line {l} of the value: {}", self.message),
            (None, None) => write!(f, "{}", self.message),
        }
    }
}

impl RenderError {
    /// The message for a diagnostic already placed at the value that failed: without "line 1
    /// of the value", which the place shows; a later line of a multi-line value is still
    /// named.
    pub fn in_placed_value(&self) -> String {
        match (&self.template, self.line) {
            (None, None | Some(1)) => self.message.clone(),
            _ => self.to_string(),
        }
    }
}

/// What Ansible's `omit` stands for while rendering (a global of the environment): a value
/// that renders as exactly this is left out of the map or list that holds it
/// ([`drop_omitted`]): `mode: "{{ file_mode | default(omit) }}"` with `file_mode` undefined
/// leaves `mode` out of the step, as ansible-core 2.19 leaves it out of a module's arguments.
/// Inside a longer text it disappears (`"x{{ omit }}"` is `x`), as in ansible-core 2.19.
pub const OMIT: &str = "__omit_place_holder__rollout";

/// `text` rendered from a value: [`OMIT`] inside a longer text disappears; a text that is only
/// [`OMIT`] stays, for [`drop_omitted`].
fn strip_omit(text: String) -> String {
    if text != OMIT && text.contains(OMIT) {
        text.replace(OMIT, "")
    } else {
        text
    }
}

/// Removes, inside `v`, the map entries and list items whose value is [`OMIT`] (ansible-core
/// 2.19 drops `omit` out of every container of a templated value); `v` itself is left as it is.
pub fn drop_omitted(v: &mut serde_json::Value) {
    let omitted = |v: &serde_json::Value| v.as_str() == Some(OMIT);
    match v {
        serde_json::Value::Object(m) => {
            m.retain(|_, v| !omitted(v));
            m.values_mut().for_each(drop_omitted);
        }
        serde_json::Value::Array(a) => {
            a.retain(|v| !omitted(v));
            a.iter_mut().for_each(drop_omitted);
        }
        _ => {}
    }
}

/// The largest output one render may produce, in bytes (10 MiB).
pub const MAX_RENDER_BYTES: usize = 10 * 1024 * 1024;

/// Template instructions one render may run: far above any real template, far below a loop
/// that would run for hours.
pub const RENDER_FUEL: u64 = 5_000_000;

/// The operator's words for a minijinja error.
pub fn describe(e: &minijinja::Error) -> String {
    let mut msg = match e.kind() {
        minijinja::ErrorKind::UndefinedError => {
            // minijinja's detail is "`name` is undefined": say it once.
            return match e.detail().and_then(|d| d.strip_suffix(" is undefined")) {
                Some(name) => format!("undefined variable {name}"),
                None => match e.detail() {
                    Some(d) => format!("undefined variable: {d}"),
                    None => "undefined variable".to_string(),
                },
            };
        }
        minijinja::ErrorKind::OutOfFuel => {
            return "template exceeds its rendering budget".to_string();
        }
        k => k.to_string(),
    };
    if let Some(d) = e.detail() {
        msg.push_str(": ");
        msg.push_str(d);
    }
    msg
}

/// The column (1-based, in characters) where byte range `range` of `src` starts; 0 when
/// unknown.
fn column(src: &str, range: Option<std::ops::Range<usize>>) -> u64 {
    range
        .and_then(|r| src.get(..r.start))
        .map(|before| before.chars().rev().take_while(|c| *c != '\n').count() as u64 + 1)
        .unwrap_or(0)
}

impl Templates {
    /// Whether any template file's text holds `word` (a cheap test before costly work that
    /// only a template reading `word` needs).
    pub fn mention(&self, word: &str) -> bool {
        self.sources.values().any(|s| s.contains(word))
    }

    /// Loads every file below `dir` as a template named by its relative path.
    pub fn load(dir: &Path) -> Result<Templates, Diagnostic> {
        let found = lookup::Found::default();
        let mut t = Templates {
            env: new_env(lookup::base(dir), found.clone()),
            dir: dir.to_path_buf(),
            sources: HashMap::new(),
            secret_lookups: found,
        };
        let mut files = Vec::new();
        if dir.is_dir() {
            collect(dir, &mut files, 0)
                .map_err(|e| Diagnostic::file(dir, format!("cannot read templates: {e}")))?;
        }
        files.sort();
        for f in files {
            let name = f
                .strip_prefix(dir)
                .unwrap_or(&f)
                .to_string_lossy()
                .into_owned();
            let text = crate::bounded::read_to_string(&f, crate::bounded::MAX_FILE_BYTES)
                .map_err(|e| Diagnostic::file(&f, format!("cannot read template: {e}")))?;
            if let Err(e) = t.env.add_template_owned(name.clone(), text.clone()) {
                let line = e.line().unwrap_or(0) as u64;
                return Err(Diagnostic::at(
                    &f,
                    &text,
                    line,
                    column(&text, e.range()),
                    format!("template syntax error: {}", describe(&e)),
                ));
            }
            t.sources.insert(name, text);
        }
        Ok(t)
    }

    /// An environment without files (for tests and inline values).
    pub fn empty() -> Templates {
        let dir = PathBuf::from("templates");
        let found = lookup::Found::default();
        Templates {
            env: new_env(lookup::base(&dir), found.clone()),
            dir,
            sources: HashMap::new(),
            secret_lookups: found,
        }
    }

    pub fn exists(&self, name: &str) -> bool {
        self.sources.contains_key(name)
    }

    /// The names of the templates, paths below `templates/`.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.sources.keys().map(String::as_str)
    }

    /// A diagnostic located in the template file, when the error came from one.
    pub fn diagnostic(&self, e: &RenderError, context: &str) -> Option<Diagnostic> {
        let name = e.template.as_ref()?;
        let src = self.sources.get(name)?;
        let path = self.dir.join(name);
        let line = e.line.unwrap_or(0) as u64;
        let column = column(src, e.range.clone());
        Some(Diagnostic::at(
            &path,
            src,
            line,
            column,
            format!("{} ({context})", e.message),
        ))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn render_file(&self, name: &str, ctx: &Value) -> Result<String, RenderError> {
        let tmpl = self.env.get_template(name).map_err(|e| RenderError {
            template: Some(name.into()),
            line: None,
            range: None,
            message: describe(&e),
        })?;
        crate::bounded::render::within("template", name, || render_capped(&tmpl, ctx))
            .map(|text| text.replace(OMIT, ""))
            .map_err(|e| RenderError {
                template: Some(name.into()),
                line: e.line(),
                range: e.range(),
                message: describe(&e),
            })
    }

    /// The values `lookup()` read from secret sources since the last call (and forgets them):
    /// to be registered, in their common spellings (`secret::spellings`), with the run's
    /// `Secrets` before anything rendered is shown.
    pub fn take_secret_lookups(&self) -> Vec<String> {
        lookup::take(&self.secret_lookups)
    }

    /// The warnings lookups gave since the last call (`errors='warn'`: a lookup that failed
    /// and gave none), each text once per run, not redacted: the caller prints them redacted.
    pub fn take_warnings(&self) -> Vec<String> {
        lookup::take_warnings(&self.secret_lookups)
    }

    /// Is `name` a global of the environment (a function such as `range`)?
    pub fn has_global(&self, name: &str) -> bool {
        self.env.globals().any(|(n, _)| n == name)
    }

    /// Renders an inline string; strings without template syntax are returned as they are.
    pub fn render_str(&self, s: &str, ctx: &Value) -> Result<String, RenderError> {
        if !has_syntax(s) {
            return Ok(s.to_string());
        }
        let err = |e: minijinja::Error| RenderError {
            template: None,
            line: e.line(),
            range: e.range(),
            message: describe(&e),
        };
        let tmpl = self.env.template_from_str(s).map_err(err)?;
        crate::bounded::render::within("a templated value", "", || render_capped(&tmpl, ctx))
            .map(strip_omit)
            .map_err(err)
    }

    /// Evaluates a `when:` expression to a boolean.
    pub fn eval_bool(&self, expr: &str, ctx: &Value) -> Result<bool, RenderError> {
        let err = |e: minijinja::Error| RenderError {
            template: None,
            line: None,
            range: e.range(),
            message: describe(&e),
        };
        let compiled = self.env.compile_expression(expr).map_err(err)?;
        let value =
            crate::bounded::render::within("a `when:` expression", "", || compiled.eval(ctx));
        Ok(value.map_err(err)?.is_true())
    }
}

/// Output that refuses to grow past [`MAX_RENDER_BYTES`].
struct Capped {
    out: Vec<u8>,
    over: bool,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.out.len() + buf.len() > MAX_RENDER_BYTES {
            self.over = true;
            return Err(std::io::Error::other("output too large"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Renders with the output capped; the fuel set in [`new_env`] bounds the work.
fn render_capped(
    tmpl: &minijinja::Template<'_, '_>,
    ctx: &Value,
) -> Result<String, minijinja::Error> {
    let mut w = Capped {
        out: Vec::new(),
        over: false,
    };
    match tmpl.render_captured_to(ctx.clone(), &mut w) {
        Ok(_) => String::from_utf8(w.out)
            .map(|out| top_up_newlines(tmpl.source(), out))
            .map_err(|e| {
                minijinja::Error::new(minijinja::ErrorKind::BadSerialization, e.to_string())
            }),
        Err(_) if w.over => Err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!(
                "output is larger than {} MiB",
                MAX_RENDER_BYTES / (1024 * 1024)
            ),
        )),
        Err(e) => Err(e),
    }
}

/// The rendered text with newlines added at its end until it ends in as many as the source
/// does, as Ansible's templating does after Jinja2 dropped the source's last one (ansible-core
/// 2.19 `_internal/_templating/_engine.py`, `_post_render_mutation`: `\n` counted, never
/// removed). A template ending in `{{ x | to_nice_yaml }}` and a newline so gets one newline,
/// not two.
fn top_up_newlines(source: &str, mut out: String) -> String {
    let trailing = |s: &str| s.len() - s.trim_end_matches('\n').len();
    let want = trailing(source);
    let have = trailing(&out);
    if want > have {
        out.extend(std::iter::repeat_n('\n', want - have));
    }
    out
}

/// Renders every string inside `v` in place; returns whether anything changed.
pub fn render_json(
    t: &Templates,
    v: &mut serde_json::Value,
    ctx: &Value,
) -> Result<bool, RenderError> {
    match v {
        serde_json::Value::String(s) if has_syntax(s) => {
            let out = t.render_str(s, ctx)?;
            let changed = out != *s;
            *s = out;
            Ok(changed)
        }
        serde_json::Value::Array(items) => items
            .iter_mut()
            .try_fold(false, |acc, i| Ok(render_json(t, i, ctx)? | acc)),
        serde_json::Value::Object(m) => m
            .values_mut()
            .try_fold(false, |acc, i| Ok(render_json(t, i, ctx)? | acc)),
        _ => Ok(false),
    }
}

/// Like [`render_json`], and calls `rendered` with each string that was rendered, right after
/// its render (so that a [`Tracked`] context can say whether that string read a secret).
pub fn render_json_each(
    t: &Templates,
    v: &mut serde_json::Value,
    ctx: &Value,
    rendered: &mut dyn FnMut(&str),
) -> Result<(), RenderError> {
    match v {
        serde_json::Value::String(s) if has_syntax(s) => {
            *s = t.render_str(s, ctx)?;
            rendered(s);
            Ok(())
        }
        serde_json::Value::Array(items) => items
            .iter_mut()
            .try_for_each(|i| render_json_each(t, i, ctx, rendered)),
        serde_json::Value::Object(m) => m
            .values_mut()
            .try_for_each(|i| render_json_each(t, i, ctx, rendered)),
        _ => Ok(()),
    }
}

/// A template context that knows which of its variables carry a secret and records whether a
/// render read one of them. Sensitivity follows the data this way: a filter, test, function
/// or operator only ever sees values the template looked up, and every look-up of a
/// top-level variable comes here, so whatever a template makes of a secret (`replace`,
/// `b64encode`, `~`, a slice, a loop) is known to depend on it, whatever the filter. A
/// variable is one unit: reading `db.host` of a `db` that holds a secret anywhere counts as
/// reading the secret.
#[derive(Debug)]
pub struct Tracked {
    vars: Value,
    secret: Arc<BTreeSet<String>>,
    read: AtomicBool,
}

impl Tracked {
    /// Tracks reads of the variables named in `secret` among `vars` (a map).
    pub fn new(vars: Value, secret: Arc<BTreeSet<String>>) -> Arc<Tracked> {
        Arc::new(Tracked {
            vars,
            secret,
            read: AtomicBool::new(false),
        })
    }

    /// The context to render with.
    pub fn value(self: &Arc<Self>) -> Value {
        Value::from_dyn_object(self.clone())
    }

    /// Whether a secret was read since the last call (and forgets it).
    pub fn take_read(&self) -> bool {
        self.read.swap(false, Ordering::SeqCst)
    }
}

impl Object for Tracked {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let name = key.as_str()?;
        let v = self
            .vars
            .get_attr(name)
            .ok()
            .filter(|v| !v.is_undefined())?;
        if self.secret.contains(name) {
            self.read.store(true, Ordering::SeqCst);
        }
        Some(v)
    }

    /// Listing the variables (`debug()`) shows them all, secrets too.
    fn enumerate(self: &Arc<Self>) -> Enumerator {
        if !self.secret.is_empty() {
            self.read.store(true, Ordering::SeqCst);
        }
        match self.vars.try_iter() {
            Ok(keys) => Enumerator::Values(keys.collect()),
            Err(_) => Enumerator::Empty,
        }
    }
}

/// Folders below `templates/` deeper than this are refused: a symbolic link to a parent folder
/// would otherwise be followed forever.
const MAX_TEMPLATE_DEPTH: usize = 16;

fn collect(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) -> std::io::Result<()> {
    if depth > MAX_TEMPLATE_DEPTH {
        return Err(std::io::Error::other(format!(
            "folders nested more than {MAX_TEMPLATE_DEPTH} deep (a symbolic link loop?)"
        )));
    }
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            collect(&p, out, depth + 1)?;
        } else if p.is_file() {
            out.push(p);
        }
    }
    Ok(())
}

/// The environment; `base`: the project folder `lookup('file', ...)` reads relative paths from,
/// `found`: where lookups of secrets are collected.
fn new_env(base: PathBuf, found: lookup::Found) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(RENDER_FUEL));
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    // Config files want `true`/`false`, not Python's `True`/`False`.
    env.set_formatter(|out, state, value| {
        if value.kind() == minijinja::value::ValueKind::Bool {
            let text = if value.is_true() { "true" } else { "false" };
            return out.write_str(text).map_err(|e| {
                minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string())
            });
        }
        minijinja::escape_formatter(out, state, value)
    });
    // Whitespace as Ansible's templating has it (ansible-core 2.19 `AnsibleEnvironment`:
    // `trim_blocks=True`; the `template` module's default too): the newline after a block tag
    // is dropped, and Jinja2's `keep_trailing_newline=False` drops the source's last newline,
    // which [`top_up_newlines`] puts back up to the source's count, as Ansible does.
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .keep_trailing_newline(false)
            .build()
            .expect("default delimiters"),
    );
    env.add_global("omit", OMIT);
    // Ansible's `lookup('env', ...)` and `lookup('file', ...)` (`template/lookup.rs`).
    env.add_global("lookup", lookup::function(base.clone(), found.clone()));
    env.add_global("query", lookup::query(base.clone(), found.clone()));
    env.add_global("q", lookup::query(base, found));
    env.add_filter("shell_quote", |s: String| crate::script::quote(&s));
    env.add_filter("b64encode", |s: String| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
    });
    env.add_filter("sha256", |s: String| {
        crate::script::sha256_hex(s.as_bytes())
    });
    env.add_filter("sha1", |s: String| {
        use sha1::Digest;
        crate::script::hex(&sha1::Sha1::digest(s.as_bytes()))
    });
    env.add_filter("xml_escape", |s: String| xml_escape(&s));
    env.add_filter("bool", ansible_bool);
    // `{{ b3scale_api_jwt_secret | b3scale_token(inventory_hostname, 'b3scale:node') }}`: a
    // b3scale API token that never changes (see `jwt::static_token`).
    env.add_filter(
        "b3scale_token",
        |secret: String, sub: String, scope: String| -> Result<String, minijinja::Error> {
            crate::jwt::static_token(&secret, &sub, &scope)
                .map_err(|m| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, m))
        },
    );
    // Ansible's filters (ansible-core 2.19 `plugins/filter/core.py`), in `template/ansible.rs`.
    env.add_filter("ternary", ansible::ternary);
    env.add_filter("regex_replace", ansible::regex_replace);
    env.add_filter("regex_search", ansible::regex_search);
    env.add_filter("to_json", ansible::to_json);
    env.add_filter("b64decode", ansible::b64decode);
    env.add_filter("hash", ansible::hash);
    env.add_filter("combine", ansible::combine);
    env.add_filter("dict2items", ansible::dict2items);
    env.add_filter("mandatory", ansible::mandatory);
    // Jinja2's int and float (what Ansible runs): text that is no number gives the default.
    env.add_filter("int", ansible::int);
    env.add_filter("float", ansible::float);
    env.add_filter("from_json", ansible::from_json);
    env.add_filter("to_yaml", yaml_dump::to_yaml);
    env.add_filter("to_nice_yaml", yaml_dump::to_nice_yaml);
    // Python's methods on strings, maps and lists (`.split()`, `.items()`, `.startswith()`).
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env
}

/// Ansible's `bool` filter (ansible-core 2.19, `lib/ansible/plugins/filter/core.py`
/// `to_bool`), replacing minijinja's, which follows truthiness (the string `"false"` would be
/// true): `yes`/`on`/`true`/`1` (any case, or the integer 1, or true) are true,
/// `no`/`off`/`false`/`0` false. Anything else is an error here, where ansible-core 2.19
/// coerces it with a deprecation warning (removed in 2.23).
///
/// # Errors
/// A value that is none of the above (`maybe`, `2`, a list, none).
fn ansible_bool(v: minijinja::Value) -> Result<bool, minijinja::Error> {
    use minijinja::value::ValueKind;
    let text = match v.kind() {
        ValueKind::Bool => return Ok(v.is_true()),
        ValueKind::Number if v.as_i64().is_some() => v.to_string(),
        ValueKind::String => v.as_str().unwrap_or_default().to_ascii_lowercase(),
        _ => String::new(),
    };
    match text.as_str() {
        "yes" | "on" | "true" | "1" => Ok(true),
        "no" | "off" | "false" | "0" => Ok(false),
        _ => Err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("`{v}` is not a boolean (yes/no, on/off, true/false, 1/0)"),
        )),
    }
}

/// `s` with XML's five special characters written as entities (the `xml_escape` filter).
pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// Does `s` contain template syntax (`{{`, `{%` or `{#`)? Values without it are used as they
/// are, never rendered.
pub fn has_syntax(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bool_reads_values_as_ansible_does() {
        let t = Templates::empty();
        let ctx = Value::from(minijinja::value::Serde(serde_json::json!({
            "t": ["yes", "On", "TRUE", "1", 1, true],
            "f": ["no", "OFF", "false", "0", 0, false],
        })));
        assert_eq!(
            t.render_str("{% for v in t %}{{ v | bool }} {% endfor %}", &ctx)
                .unwrap(),
            "true true true true true true "
        );
        assert_eq!(
            t.render_str("{% for v in f %}{{ v | bool }} {% endfor %}", &ctx)
                .unwrap(),
            "false false false false false false "
        );
        let e = t.render_str("{{ 'maybe' | bool }}", &ctx).unwrap_err();
        assert!(
            e.message.contains("`maybe` is not a boolean"),
            "{}",
            e.message
        );
        assert!(t.render_str("{{ 2 | bool }}", &ctx).is_err());
    }

    /// Ansible's filters and Python's methods, with values worked out from ansible-core's
    /// code (the same expressions against Jinja2 itself: `tests/jinja_oracle.rs`).
    #[test]
    fn ansible_filters_and_python_methods() {
        let t = Templates::empty();
        let ctx = Value::from(minijinja::value::Serde(serde_json::json!({
            "h": "bbb01.example.org",
            "a": {"x": 1, "n": {"p": 1, "l": [1, 2]}},
            "b": {"y": 2, "n": {"q": 2, "l": [2, 3]}},
        })));
        for (expr, want) in [
            (
                "{{ h | regex_replace('^([a-z]+)(\\\\d+)\\\\..*$', '\\\\2-\\\\g<1>') }}",
                "01-bbb",
            ),
            ("{{ 'a$b' | regex_replace('\\\\$', '$1') }}", "a$1b"),
            ("{{ h | regex_search('\\\\d+') }}", "01"),
            (
                "{{ h | regex_search('(?P<n>\\\\d)(\\\\d)', '\\\\2', '\\\\g<n>') | join }}",
                "10",
            ),
            (
                "{{ none | ternary(1, 2, 3) }} {{ '' | ternary(1, 2) }}",
                "3 2",
            ),
            // The variables' maps come sorted (serde_json); literals and results keep their order.
            (
                "{{ a | combine(b) | to_json }}",
                r#"{"n": {"l": [2, 3], "q": 2}, "x": 1, "y": 2}"#,
            ),
            (
                "{{ {'z': 1, 'a': 2} | combine({'m': 3, 'z': 4}) | to_json }}",
                r#"{"z": 4, "a": 2, "m": 3}"#,
            ),
            (
                "{{ a | combine(b, recursive=true, list_merge='append_rp') | to_json }}",
                r#"{"n": {"l": [1, 2, 3], "p": 1, "q": 2}, "x": 1, "y": 2}"#,
            ),
            ("{{ 'é' | to_json }}", r#""\u00e9""#),
            (
                "{{ [1.0, none] | to_json(indent=1) }}",
                "[\n 1.0,\n null\n]",
            ),
            ("{{ 'aGk=' | b64decode }}", "hi"),
            (
                "{{ 'abc' | hash('sha1') }}",
                "a9993e364706816aba3e25717850c26c9cd0d89d",
            ),
            (
                "{{ b | dict2items | map(attribute='key') | join(',') }}",
                "n,y",
            ),
            (
                "{{ h.split('.')[0] }} {{ h.startswith('bbb') }}",
                "bbb01 true",
            ),
            (
                "{% for i in [1, 2, 3] %}{% if i == 2 %}{% break %}{% endif %}{{ i }}{% endfor %}",
                "1",
            ),
        ] {
            assert_eq!(t.render_str(expr, &ctx).unwrap(), want, "{expr}");
        }
        for bad in [
            "{{ nope | mandatory }}",
            "{{ 'x' | hash('md5') }}",
            "{{ 'x' | regex_replace('(?<=a)b', '') }}",
            "{{ 'abc' | b64decode }}",
            "{{ a | combine(b, list_merge='x') }}",
        ] {
            assert!(t.render_str(bad, &ctx).is_err(), "{bad}");
        }
    }

    #[test]
    fn undefined_variables_are_errors() {
        let t = Templates::empty();
        let ctx = Value::from(minijinja::value::Serde(serde_json::json!({"a": 1})));
        let e = t.render_str("x={{ b }}", &ctx).unwrap_err();
        assert!(e.message.starts_with("undefined variable"), "{}", e.message);
        assert_eq!(t.render_str("x={{ a }}", &ctx).unwrap(), "x=1");
    }

    #[test]
    fn booleans_render_lowercase_for_config_files() {
        let t = Templates::empty();
        let ctx = Value::from(minijinja::value::Serde(
            serde_json::json!({"on": true, "n": 1}),
        ));
        assert_eq!(
            t.render_str("{{ on }} {{ not on }} {{ n }}", &ctx).unwrap(),
            "true false 1"
        );
    }

    #[test]
    fn no_html_escaping_and_shell_quote() {
        let t = Templates::empty();
        let ctx = Value::from(minijinja::value::Serde(serde_json::json!({"a": "<b>&'x"})));
        assert_eq!(t.render_str("{{ a }}", &ctx).unwrap(), "<b>&'x");
        assert_eq!(
            t.render_str("{{ a | shell_quote }}", &ctx).unwrap(),
            r#"'<b>&'\''x'"#
        );
    }
}

#[cfg(test)]
mod lookup_warnings {
    use super::*;

    /// `errors='warn'`: a failed lookup gives none and one warning per text, however many
    /// hosts render it; `errors='ignore'` none and no warning; the default an error.
    #[test]
    fn a_failed_lookup_warns_once_with_errors_warn() {
        let t = Templates::empty();
        let ctx = Value::from(());
        let warn = "{{ lookup('file', 'rollout-nosuch.txt', errors='warn') is none }}";
        for _ in 0..3 {
            assert_eq!(t.render_str(warn, &ctx).unwrap(), "true");
        }
        let w = t.take_warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("an error occurred while running the lookup plugin 'file'")
                && w[0].contains("rollout-nosuch.txt"),
            "{w:?}"
        );
        assert_eq!(t.render_str(warn, &ctx).unwrap(), "true");
        assert!(t.take_warnings().is_empty(), "said once per run");
        let ignore = "{{ query('file', 'rollout-nosuch.txt', errors='ignore') | length }}";
        assert_eq!(t.render_str(ignore, &ctx).unwrap(), "0");
        assert!(t.take_warnings().is_empty());
        assert!(
            t.render_str("{{ lookup('file', 'rollout-nosuch.txt') }}", &ctx)
                .is_err()
        );
        assert!(
            t.render_str("{{ lookup('file', 'x', errors='loud') }}", &ctx)
                .unwrap_err()
                .to_string()
                .contains("expected strict, warn or ignore")
        );
    }
}

#[cfg(test)]
mod secret_tracking {
    use super::*;

    /// Every filter, test and function of our environment applied to a secret, with the
    /// expression that does it. A filter added to `new_env` or turned on in minijinja without
    /// a row here fails [`every_filter_has_a_row`].
    const FILTERS: &[(&str, &str)] = &[
        ("safe", "s | safe"),
        ("escape", "s | escape"),
        ("e", "s | e"),
        ("lower", "s | lower"),
        ("upper", "s | upper"),
        ("title", "s | title"),
        ("capitalize", "s | capitalize"),
        ("replace", "s | replace(\"'\", \"''\")"),
        ("length", "s | length"),
        ("count", "s | count"),
        ("dictsort", "{'k': s} | dictsort"),
        ("items", "{'k': s} | items | list"),
        ("reverse", "s | reverse"),
        ("trim", "s | trim"),
        ("join", "[s, 'x'] | join(',')"),
        ("split", "s | split('-') | join('/')"),
        ("lines", "s | lines"),
        ("default", "none | default(s)"),
        ("d", "none | d(s)"),
        ("round", "s | length | round"),
        ("abs", "s | length | abs"),
        ("int", "s | length | int"),
        ("float", "s | length | float"),
        ("attr", "{'k': s} | attr('k')"),
        ("first", "s | first"),
        ("last", "s | last"),
        ("min", "s | min"),
        ("max", "s | max"),
        ("sort", "s | sort | join"),
        ("list", "s | list"),
        ("string", "s | string"),
        ("bool", "s | bool"),
        (
            "b3scale_token",
            "s | b3scale_token('bbb01', 'b3scale:node')",
        ),
        ("batch", "s | batch(3) | list"),
        ("slice", "s | slice(2) | list"),
        ("sum", "[s | length, 1] | sum"),
        ("indent", "s | indent(2)"),
        ("select", "[s, ''] | select | list"),
        ("reject", "[s, ''] | reject | list"),
        ("selectattr", "[{'k': s}] | selectattr('k') | list"),
        ("rejectattr", "[{'k': s}] | rejectattr('x') | list"),
        ("map", "[s] | map('upper') | list"),
        ("groupby", "[{'k': s}] | groupby('k') | list"),
        ("unique", "[s, s] | unique | list"),
        ("chain", "[s] | chain(['x']) | list"),
        ("zip", "[s] | zip(['x']) | list"),
        ("pprint", "s | pprint"),
        ("format", "'%s!' | format(s)"),
        // Ours (`new_env`).
        ("shell_quote", "s | shell_quote"),
        ("b64encode", "s | b64encode"),
        ("sha256", "s | sha256"),
        ("sha1", "s | sha1"),
        ("xml_escape", "s | xml_escape"),
        // minijinja's `json` and `urlencode` features.
        ("tojson", "s | tojson"),
        ("urlencode", "s | urlencode"),
        // Ansible's (`template/ansible.rs`).
        ("ternary", "s | ternary(s, 'no')"),
        ("regex_replace", "s | regex_replace('[a-z]', 'x')"),
        ("regex_search", "s | regex_search('S(.*)', '\\\\1')"),
        ("to_json", "{'k': s} | to_json"),
        ("b64decode", "s | b64encode | b64decode"),
        ("hash", "s | hash('sha512')"),
        ("combine", "{'a': 1} | combine({'k': s}, recursive=true)"),
        ("dict2items", "{'k': s} | dict2items"),
        ("mandatory", "s | mandatory"),
        ("to_yaml", "{'k': s} | to_yaml"),
        ("to_nice_yaml", "[s] | to_nice_yaml"),
        ("from_json", "s | to_json | from_json"),
    ];

    const TESTS: &[&str] = &[
        "undefined",
        "defined",
        "none",
        "safe",
        "escaped",
        "boolean",
        "odd",
        "even",
        "divisibleby(2)",
        "number",
        "integer",
        "int",
        "float",
        "string",
        "sequence",
        "iterable",
        "mapping",
        "startingwith('a')",
        "endingwith('a')",
        "lower",
        "upper",
        "sameas(s)",
        "eq('a')",
        "equalto('a')",
        "ne('a')",
        "lt('a')",
        "lessthan('a')",
        "le('a')",
        "gt('a')",
        "greaterthan('a')",
        "ge('a')",
        "in('abc')",
        "true",
        "false",
        "filter",
        "test",
    ];

    /// Operators and functions: concatenation into a URL, slicing, formatting, loops.
    const OTHERS: &[&str] = &[
        "'postgres://b3scale:' ~ s ~ '@localhost/b3scale'",
        "'https://x/?p=' + s",
        "s[1:4]",
        "s[0]",
        "'%s' % s",
        "range(s | length) | list",
        "dict(k=s)",
        "debug()",
        "namespace(k=s).k",
        "'x' in s",
        "(s | length) * 2",
        "[s][0]",
        // Python's methods (minijinja-contrib's pycompat).
        "s.split('-')",
        "s.upper()",
        "s.startswith('S')",
        "s.replace('e', 'x')",
        "{'k': s}.items() | list",
        "[s].count(s)",
        "s | default(omit)",
        "lookup('env', s)",
    ];

    fn tracked() -> Arc<Tracked> {
        let vars = Value::from(minijinja::value::Serde(
            serde_json::json!({"s": "S3cr-et'&<>/x", "n": "plain"}),
        ));
        Tracked::new(vars, Arc::new(["s".to_string()].into()))
    }

    fn reads_secret(t: &Templates, template: &str) -> bool {
        let ctx = tracked();
        let _ = t.render_str(template, &ctx.value());
        ctx.take_read()
    }

    #[test]
    fn every_filter_test_and_function_applied_to_a_secret_depends_on_it() {
        let t = Templates::empty();
        let exprs = FILTERS.iter().map(|(_, e)| e.to_string());
        let tests = TESTS.iter().map(|x| format!("s is {x}"));
        let others = OTHERS.iter().map(|x| x.to_string());
        for e in exprs.chain(tests).chain(others) {
            assert!(reads_secret(&t, &format!("{{{{ {e} }}}}")), "{e}");
            assert!(
                reads_secret(&t, &format!("{{% set v = {e} %}}[{{{{ v }}}}]")),
                "{e}"
            );
        }
        for plain in [
            "{{ n | upper }}",
            "{{ n ~ '/x' }}",
            "{% if n %}x{% endif %}",
        ] {
            assert!(!reads_secret(&t, plain), "{plain}");
        }
    }

    #[test]
    fn every_filter_has_a_row() {
        let t = Templates::empty();
        let ctx = Value::from(());
        for (name, _) in FILTERS {
            let is = t.render_str(&format!("{{{{ '{name}' is filter }}}}"), &ctx);
            assert_eq!(is.unwrap(), "true", "{name} is not a filter");
        }
        // Filters of minijinja's optional features: turning one on needs a row above.
        for name in ["filesizeformat", "wordcount", "truncate"] {
            let is = t.render_str(&format!("{{{{ '{name}' is filter }}}}"), &ctx);
            assert_eq!(
                is.unwrap(),
                "false",
                "{name} is a filter now: add it to FILTERS"
            );
        }
        let src = include_str!("template.rs");
        for part in src.split("env.add_filter(\"").skip(1) {
            let name = part.split('"').next().unwrap();
            assert!(FILTERS.iter().any(|(n, _)| *n == name), "{name} has no row");
        }
        assert!(
            !src.contains(concat!("env.add_", "function"))
                && !src.contains(concat!("env.add_", "test"))
        );
        let globals: Vec<&str> = t.env.globals().map(|(n, _)| n).collect();
        assert_eq!(
            globals,
            [
                "debug",
                "dict",
                "lookup",
                "namespace",
                "omit",
                "q",
                "query",
                "range"
            ],
            "a global without a row"
        );
    }
}
