//! Templates as operators write them, against the oracle: every expression of [`CASES`] is
//! rendered by rollout's template environment and by Jinja2 with ansible-core 2.19's own
//! filters (`ansible.plugins.filter.core`), from the same variables, and the outputs must be
//! equal; every expression of [`ERRORS`] must fail in both. The Python that has ansible-core
//! is named by `ROLLOUT_ORACLE_PYTHON` (`.ci/run` installs ansible-core 2.19.14 in the benchmark venv `bench/.venv` and
//! sets it); without it at build time the test is *ignored* with that reason, and run anyway
//! (`--include-ignored`) it fails saying so.
//!
//! One documented difference is applied on the Jinja2 side: rollout writes a boolean that is
//! printed as `true`/`false` (config files want that), Jinja2 as `True`/`False`; the oracle's
//! `finalize` writes them lowercase too.

mod common;
use rollout::template::Templates;

/// Expressions (templates) that must render as Jinja2 renders them.
const CASES: &[&str] = &[
    // bool
    // int and float as Jinja2's: no number gives the default
    "{{ 'abc' | int }} {{ '' | int }} {{ ' 42 ' | int }} {{ '-7' | int }}",
    "{{ '1.9' | int }} {{ '1e3' | int }} {{ '1_000' | int }} {{ 'x' | int(7) }}",
    "{{ none_value | int }} {{ flag_yes | int }} {{ 2.7 | int }} {{ ports | int }}",
    "{{ 'ff' | int(0, 16) }} {{ '11' | int(base=2) }} {{ (csv | default('') | int) + 1 }}",
    "{{ 'abc' | float }} {{ '2.5' | float }} {{ 3 | float }} {{ 'x' | float(1.5) }}",
    "{{ flag_yes | bool }}",
    "{{ flag_false | bool }}",
    "{{ 'x' if flag_yes | bool else 'y' }}",
    "{{ 1 | bool }} {{ 'On' | bool }} {{ 'off' | bool }}",
    // ternary
    "{{ (n > 2) | ternary('big', 'small') }}",
    "{{ empty | ternary('set', 'unset') }}",
    "{{ none_value | ternary('t', 'f', 'none') }}",
    "{{ empty | ternary('t', 'f', 'none') }}",
    // regex_replace
    "{{ bbb_hostname | regex_replace('\\\\.example\\\\.org$', '') }}",
    "{{ bbb_hostname | regex_replace('^([a-z]+)(\\\\d\\\\d)\\\\..*$', '\\\\2-\\\\1') }}",
    "{{ bbb_hostname | regex_replace('(?P<h>[a-z]+)', '\\\\g<h>X') }}",
    "{{ text | regex_replace('o', '0', count=1) }}",
    "{{ text | regex_replace('WORLD', 'there', ignorecase=true) }}",
    "{{ 'a$b' | regex_replace('\\\\$', '$$') }}",
    "{{ 'a\\nb\\n' | regex_replace('^', '# ', multiline=true) }}",
    "{{ text | lower | regex_replace('\\\\s+', '_') }}",
    // regex_search
    "{{ bbb_hostname | regex_search('\\\\d+') }}",
    "{{ bbb_hostname | regex_search('^([a-z]+?)(\\\\d+)', '\\\\2', '\\\\1') | join(',') }}",
    "{{ bbb_hostname | regex_search('(?P<num>\\\\d+)', '\\\\g<num>') | first }}",
    "{{ turn.port | string | regex_search('^34') }}",
    "{{ 'X' if text | regex_search('nomatch') is none else 'Y' }}",
    // to_json
    "{{ turn | to_json }}",
    "{{ ports | to_json }}",
    "{{ uni | to_json }}",
    "{{ users | to_json(indent=2) }}",
    "{{ override | to_json(sort_keys=true) }}",
    "{{ 'a\"b\\\\c\\n' | to_json }}",
    "{{ [1.5, 2.0, none, true, {}] | to_json }}",
    // b64decode, b64encode, hash
    "{{ secret_b64 | b64decode }}",
    "{{ 'hello' | b64encode | b64decode }}",
    "{{ 'abc' | hash('sha1') }}",
    "{{ 'abc' | hash('sha256') }}",
    "{{ 'abc' | hash('sha512') }}",
    "{{ 'abc' | hash }}",
    // combine
    "{{ defaults | combine(override) | to_json }}",
    "{{ defaults | combine(override, recursive=true) | to_json }}",
    "{{ defaults | combine(override, list_merge='append') | to_json }}",
    "{{ defaults | combine(override, recursive=true, list_merge='append_rp') | to_json }}",
    "{{ [defaults, override, {'c': 3}] | combine | to_json }}",
    "{{ {'a': 1} | combine({'b': 2}, {'a': 3}) | to_json }}",
    // dict2items
    "{% for i in turn | dict2items %}{{ i.key }}={{ i.value }};{% endfor %}",
    "{{ turn | dict2items(key_name='k', value_name='v') | map(attribute='k') | join(',') }}",
    // mandatory
    "{{ bbb_hostname | mandatory }}",
    // to_yaml, to_nice_yaml (PyYAML's emitter: quoting, flow style, folding at 80 columns)
    "{{ turn | to_yaml }}",
    "{{ turn | to_nice_yaml }}",
    "{{ users | to_yaml }}",
    "{{ users | to_nice_yaml }}",
    "{{ defaults | to_yaml }}",
    "{{ defaults | to_nice_yaml(indent=2) }}",
    "{{ override | to_yaml(default_flow_style=false) }}",
    "{{ override | to_yaml(default_flow_style=true) }}",
    "{{ tricky | to_yaml }}",
    "{{ tricky | to_nice_yaml }}",
    "{{ {'k': tricky} | to_yaml }}",
    "{{ long | to_yaml }}",
    "{{ long | to_nice_yaml(width=40) }}",
    "{{ {'list': long, 'x': {'y': [1.5, none, true, 10000000000000000.0, 0.00001, -0.0]}} | to_nice_yaml }}",
    "{{ bbb_hostname | to_yaml }}",
    "{{ '' | to_yaml }}|{{ 'yes' | to_yaml }}|{{ '123' | to_yaml }}|{{ 3 | to_yaml }}",
    "{{ {'b': 1, 'a': {}} | to_yaml(sort_keys=false) }}",
    "{{ [[1, 2], [], {}, {'a': [3]}] | to_yaml }}",
    "{{ [[1, 2], [], {}, {'a': [3]}] | to_nice_yaml }}",
    "{{ {'': 1, 'multi\\nline': 2, 'x' * 130: 3} | to_yaml }}",
    "{{ {'': 1, 'multi\\nline': 2, 'x' * 130: 3} | to_yaml(default_flow_style=true) }}",
    "{{ uni | to_yaml }}",
    // Python's methods
    "{{ csv.split(',') | join('|') }}",
    "{{ csv.split(',') | map('trim') | join('|') }}",
    "{{ bbb_hostname.split('.')[0] }}",
    "{{ bbb_hostname.startswith('bbb') }} {{ bbb_hostname.endswith('.net') }}",
    "{{ text.upper() }} {{ text.lower() }}",
    "[{{ '  x  '.strip() }}]",
    "{{ text.replace('World', 'BBB') }}",
    "{% for k, v in turn.items() %}{{ k }}:{{ v }} {% endfor %}",
    "{{ turn.keys() | list | join(',') }}",
    "{{ turn.get('port') }} {{ turn.get('missing', 'dflt') }}",
    // urlencode, loop controls
    "{{ bbb_hostname | urlencode }}",
    "{{ 'a b&c/d' | urlencode }}",
    "{% for u in users %}{% if not u.admin %}{% continue %}{% endif %}{{ u.name }}{% endfor %}",
    "{% for p in [1, 2, 3, 4] %}{% if p > 2 %}{% break %}{% endif %}{{ p }}{% endfor %}",
    // built-ins operators combine these with
    "{{ users | selectattr('admin') | map(attribute='name') | join(',') }}",
    "{{ ports | map('string') | join(':') }}",
    "{{ bbb_hostname ~ ':' ~ turn.port }}",
    "{{ none_value | default('x', true) }}",
    "{{ '%s-%d' | format('a', 3) }}",
    // from_json
    "{{ ('{\\\"a\\\": [1, 2.5, null], \\\"u\\\": \\\"\\\\u00e9\\\"}' | from_json) | to_json }}",
    "{{ ('[\\\"x\\\", {\\\"y\\\": 2}]' | from_json)[1].y }}",
];

/// Expressions both must refuse.
const ERRORS: &[&str] = &[
    "{{ undefined_var | mandatory }}",
    "{{ 'x' | hash('nosuch') }}",
    "{{ 'abc' | b64decode }}",
    "{{ 'x' | dict2items }}",
    "{{ turn | combine([1]) }}",
    "{{ 'x' | regex_replace('(', '') }}",
    "{{ 'x' | regex_search('x', 'y') }}",
    "{{ defaults | combine(override, list_merge='nosuch') }}",
    "{{ '{nope' | from_json }}",
    "{{ '' | from_json }}",
];

fn vars() -> serde_json::Value {
    serde_json::json!({
        "bbb_hostname": "bbb01.example.org",
        "flag_yes": "yes",
        "flag_false": "False",
        "n": 3,
        "empty": "",
        "csv": "a,b, c",
        "ports": [16384, 32768],
        "turn": {"host": "turn.example.org", "port": 3478, "tls": true},
        "defaults": {"a": 1, "nested": {"x": 1, "y": [1, 2]}, "list": [1, 2]},
        "override": {"b": 2, "nested": {"y": [3], "z": 0}, "list": [2, 3]},
        "secret_b64": "aGVsbG8gd29ybGQ=",
        "users": [{"name": "ann", "admin": true}, {"name": "bob", "admin": false}],
        "none_value": null,
        "text": "Hello World",
        "uni": "Grüße ☃ 😀",
        "tricky": [
            "", "yes", "No", "on", "null", "~", "123", "0x1F", "017", "1.5", "1e3", "1.0e+3", ".inf",
            "2024-01-02", "2024-1-2 10:00:00", "=", "<<", "*", "a: b", "a:b", "- x", "-x", "#c",
            "a #c", "a#c", "[x]", "x]", "{", "@x", "`x", "%x", "!x", "&x", "|x", ">x", "?x", "? x",
            ":x", "---", "...x", " lead", "trail ", "tab\there", "line\n", "two\nlines",
            "a\n\nb", " \nx", "x \ny", "it's", "say \"hi\"", "back\\slash", "\u{e9}t\u{e9}",
            "nbsp\u{a0}x", "\u{feff}bom", "ctl\u{1}", "emoji \u{1f600}", "x\u{2028}y", "true\n",
            "12:30", "190:20:30", "0b101", "+1", "-.5", "1_000", "ok", "with space", "a,b", "a, b"
        ],
        "long": [
            "word ".repeat(30),
            "longwordwithoutspaces".repeat(6),
            format!("'{}'", "quoted words here ".repeat(8)),
            format!("{}\n{}", "line one is rather long ".repeat(4), "second"),
            format!("tab\t{}", "double quoted and long ".repeat(6)),
            format!("{}  two  spaces", "x ".repeat(45)),
        ],
    })
}

/// Renders each template with Jinja2 and ansible-core's filters: one JSON line per template,
/// `{"ok": text}` or `{"err": message}`.
const ORACLE: &str = r#"
import json, sys
import jinja2
import ansible
from ansible.plugins.filter.core import FilterModule
assert ansible.__version__.startswith("2.19."), ansible.__version__
req = json.load(sys.stdin)
# Whitespace as ansible-core's AnsibleEnvironment has it (trim_blocks=True, Jinja2's default
# keep_trailing_newline=False, then the source's trailing newlines topped up).
def top_up(source, out):
    want = len(source) - len(source.rstrip("\n"))
    have = len(out) - len(out.rstrip("\n"))
    return out + "\n" * (want - have) if want > have else out
env = jinja2.Environment(
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    extensions=["jinja2.ext.loopcontrols"],
    finalize=lambda v: ("true" if v else "false") if isinstance(v, bool) else v,
)
env.filters.update(FilterModule().filters())
for t in req["templates"]:
    try:
        print(json.dumps({"ok": top_up(t, env.from_string(t).render(**req["vars"]))}))
    except Exception as e:
        print(json.dumps({"err": f"{type(e).__name__}: {e}"}))
"#;

fn oracle(templates: &[&str]) -> Vec<Result<String, String>> {
    let lines: Vec<_> = common::ansible_oracle(
        "Jinja2",
        ORACLE,
        &[],
        &serde_json::json!({"vars": vars(), "templates": templates}),
    )
    .into_iter()
    .map(|r| r.map(|ok| ok.as_str().unwrap().to_string()))
    .collect();
    assert_eq!(lines.len(), templates.len(), "one oracle line per template");
    lines
}

fn rollout(templates: &[&str]) -> Vec<Result<String, String>> {
    let t = Templates::empty();
    let ctx = minijinja::Value::from(minijinja::value::Serde(vars()));
    templates
        .iter()
        .map(|s| t.render_str(s, &ctx).map_err(|e| e.to_string()))
        .collect()
}

#[test]
#[cfg_attr(
    not(jinja_oracle),
    ignore = "needs ansible-core 2.19: build with ROLLOUT_ORACLE_PYTHON=<venv>/bin/python (.ci/run makes it in bench/.venv)"
)]
fn templates_render_as_jinja2_with_ansible_filters_does() {
    assert!(CASES.len() >= 84, "{} cases", CASES.len());
    let want = oracle(CASES);
    let got = rollout(CASES);
    let mut wrong = Vec::new();
    for ((t, w), g) in CASES.iter().zip(&want).zip(&got) {
        match w {
            Ok(_) if w == g => {}
            Ok(w) => wrong.push(format!("{t}\n  jinja2:  {w:?}\n  rollout: {g:?}")),
            Err(e) => wrong.push(format!("{t}\n  jinja2 failed: {e}")),
        }
    }
    let want = oracle(ERRORS);
    for ((t, w), g) in ERRORS.iter().zip(&want).zip(rollout(ERRORS)) {
        if w.is_ok() || g.is_ok() {
            wrong.push(format!("{t} must fail\n  jinja2:  {w:?}\n  rollout: {g:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} differ:\n{}",
        wrong.len(),
        CASES.len() + ERRORS.len(),
        wrong.join("\n")
    );
}

/// Values as module arguments, rendered whole: ansible-core's `Templar.template` on a map of
/// arguments against rollout's rendering of a step's arguments (`render_json`, then
/// `drop_omitted`). Leaves are compared as text (Ansible's native types aside).
const VALUES: &[&str] = &[
    r#"{"a": "{{ omit }}", "b": "{{ n }}"}"#,
    r#"{"l": [1, "{{ nope | default(omit) }}", {"k": "{{ omit }}", "j": "x"}]}"#,
    r#"{"d": "x{{ omit }}y", "e": "{{ none_value | default(omit, true) }}"}"#,
    r#"{"f": "{{ (n > 2) | ternary(omit, 'small') }}", "g": "{{ (n < 2) | ternary(omit, 'small') }}"}"#,
    // lookup('env'): HOME and PATH are set for both (the oracle inherits the test's environment)
    r#"{"home": "{{ lookup('env', 'HOME') }}", "unset": "[{{ lookup('env', 'ROLLOUT_SURELY_UNSET_9') }}]"}"#,
    r#"{"two": "{{ lookup('env', 'HOME', 'PATH') }}", "d": "{{ lookup('env', 'ROLLOUT_SURELY_UNSET_9', default='dflt') }}"}"#,
    // lookup('file'): files/ of the base folder first, then the folder itself
    r#"{"f": "{{ lookup('file', 'motd.txt') }}", "b": "{{ lookup('file', 'beside.txt') }}"}"#,
    r#"{"raw": "{{ lookup('file', 'motd.txt', rstrip=false) }}", "l": "{{ lookup('file', 'motd.txt', 'beside.txt', wantlist=true) | join('|') }}"}"#,
    r#"{"missing": "{{ lookup('file', 'nosuch.txt') }}"}"#,
    // query()/q(): lookup with wantlist=True; errors= turns a failure into no value
    r#"{"q": "{{ query('file', 'motd.txt', 'beside.txt') | join('|') }}", "n": "{{ q('env', 'HOME') | length }}"}"#,
    r#"{"one": "{{ query('file', 'beside.txt') | first }}", "len": "{{ query('env', 'HOME', 'PATH') | length }}"}"#,
    r#"{"i": "{{ (lookup('file', 'nosuch.txt', errors='ignore') is none) | ternary('none', 'value') }}", "il": "{{ query('file', 'nosuch.txt', errors='ignore') | length }}"}"#,
    r#"{"w": "{{ (lookup('file', 'nosuch.txt', errors='warn') is none) | ternary('none', 'value') }}", "s": "{{ lookup('file', 'beside.txt', errors='ignore') }}"}"#,
    r#"{"strict": "{{ lookup('file', 'nosuch.txt', errors='strict') }}"}"#,
    r#"{"noplugin": "{{ lookup('nosuchplugin', 'x', errors='ignore') }}"}"#,
    // from_json (json.loads)
    r#"{"j": "{{ ('{\"a\": [1, 2], \"b\": \"x\"}' | from_json).b }}", "k": "{{ ('[1, 2, 3]' | from_json) | sum }}"}"#,
    r#"{"bad": "{{ '{nope' | from_json }}"}"#,
];

/// Templates each value of the request with ansible-core's `Templar` (every string trusted as
/// a template, as a task's arguments are): one JSON line each.
const TEMPLAR: &str = r#"
import json, sys
from ansible.template import Templar, trust_as_template
from ansible.parsing.dataloader import DataLoader
req = json.load(sys.stdin)
loader = DataLoader()
loader.set_basedir(req["basedir"])
templar = Templar(loader=loader, variables=req["vars"])
def trust(v):
    if isinstance(v, str):
        return trust_as_template(v)
    if isinstance(v, list):
        return [trust(i) for i in v]
    if isinstance(v, dict):
        return {k: trust(i) for k, i in v.items()}
    return v
def text(v):
    if isinstance(v, list):
        return [text(i) for i in v]
    if isinstance(v, dict):
        return {k: text(i) for k, i in v.items()}
    return str(v)
for v in req["values"]:
    try:
        print(json.dumps({"ok": text(templar.template(trust(json.loads(v))))}))
    except Exception as e:
        print(json.dumps({"err": f"{type(e).__name__}: {e}"}))
"#;

/// The folder `lookup('file', ...)` reads from in [`VALUES`], for both.
fn lookup_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lookup")
}

fn text_leaves(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Array(a) => Value::Array(a.into_iter().map(text_leaves).collect()),
        Value::Object(m) => {
            Value::Object(m.into_iter().map(|(k, v)| (k, text_leaves(v))).collect())
        }
        Value::String(s) => Value::String(s),
        other => Value::String(other.to_string()),
    }
}

#[test]
#[cfg_attr(
    not(jinja_oracle),
    ignore = "needs ansible-core 2.19: build with ROLLOUT_ORACLE_PYTHON=<venv>/bin/python (.ci/run makes it in bench/.venv)"
)]
fn arguments_render_as_ansible_templar_does() {
    let want = common::ansible_oracle(
        "Templar",
        TEMPLAR,
        &[],
        &serde_json::json!({"vars": vars(), "values": VALUES, "basedir": lookup_dir()}),
    );
    assert_eq!(want.len(), VALUES.len(), "one oracle line per value");
    let t = Templates::load(&lookup_dir().join("templates")).unwrap();
    let ctx = minijinja::Value::from(minijinja::value::Serde(vars()));
    let mut wrong = Vec::new();
    for (v, w) in VALUES.iter().zip(want) {
        let mut got: serde_json::Value = serde_json::from_str(v).unwrap();
        let got = rollout::template::render_json(&t, &mut got, &ctx)
            .map(|_| {
                rollout::template::drop_omitted(&mut got);
                text_leaves(got)
            })
            .map_err(|e| e.to_string());
        match w {
            Ok(w) if Ok(&w) == got.as_ref() => {}
            Err(_) if got.is_err() => {}
            w => wrong.push(format!("{v}\n  ansible: {w:?}\n  rollout: {got:?}")),
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} differ:\n{}",
        wrong.len(),
        VALUES.len(),
        wrong.join("\n")
    );
}

/// Template files as Ansible's `template` module renders them (whitespace above all: a block
/// tag's newline dropped, the source's trailing newlines kept, no more): each text is written
/// to a file and rendered by rollout's `render_file` and by ansible-core's `Templar` with the
/// module's overrides (`plugins/action/template.py`: `trim_blocks=True`, `lstrip_blocks=False`,
/// `escape_backslashes=False`). Booleans are left out (rollout writes `true`, Python `True`),
/// and so are files whose whole output is one number: ansible-core 2.19's native types make
/// such a file's text `1` where the source says `{{ x }}` and a newline (the top-up is only done
/// for text), a quirk rollout does not copy (docs/from-ansible.md).
const FILES: &[&str] = &[
    "a\n{% if n > 2 %}\nb\n{% endif %}\nc\n",
    "{% for p in ports %}\nport {{ p }}\n{% endfor %}\n",
    "x: 1\n{{ turn | to_nice_yaml }}\n",
    "x: 1\n{{ turn | to_nice_yaml }}",
    "no newline at the end",
    "two\n\n",
    "three\n\n\n",
    "{{ text }}\n{# a comment #}\nend\n",
    "{%- if n > 2 -%}\n  big\n{%- endif %}\nafter\n",
    "  {% if n %}indented{% endif %}\n  {% if n %}\nkept\n  {% endif %}\n",
    "{% set x = 'v' %}\n{{ x }}\n",
    "{{ 'a\\n\\n' }}",
    "{{ 'a\\n\\n' }}\n",
    "{% raw %}{{ x }}\n{% endraw %}\n",
    "{% macro m(a) %}\n[{{ a }}]\n{% endmacro %}\n{{ m(1) }}{{ m(2) }}\n",
    "{% for u in users %}\n{% if u.admin %}\nadmin {{ u.name }}\n{% else %}\nuser {{ u.name }}\n{% endif %}\n{% endfor %}\n",
    "{% for u in users +%}\n{{ u.name }}\n{% endfor %}\n",
    "\n\n{{ n }}\n",
    "{{ text }}{% if false %}\nhidden\n{% endif %}\n\n",
];

const TEMPLATE_MODULE: &str = r#"
import json, os, sys
from ansible.template import Templar, trust_as_template
from ansible.parsing.dataloader import DataLoader
req = json.load(sys.stdin)
loader = DataLoader()
templar = Templar(loader=loader, variables=req["vars"])
overrides = dict(trim_blocks=True, lstrip_blocks=False, newline_sequence="\n")
for path in req["files"]:
    try:
        with open(path, encoding="utf-8", newline="") as f:
            data = trust_as_template(f.read())
        t = templar.copy_with_new_env(searchpath=[os.path.dirname(path)], available_variables=req["vars"])
        print(json.dumps({"ok": t.template(data, escape_backslashes=False, overrides=overrides)}))
    except Exception as e:
        print(json.dumps({"err": f"{type(e).__name__}: {e}"}))
"#;

#[test]
#[cfg_attr(
    not(jinja_oracle),
    ignore = "needs ansible-core 2.19: build with ROLLOUT_ORACLE_PYTHON=<venv>/bin/python (.ci/run makes it in bench/.venv)"
)]
fn template_files_render_as_the_ansible_template_module_does() {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..FILES.len()).map(|i| format!("f{i}.j2")).collect();
    for (name, text) in names.iter().zip(FILES) {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let paths: Vec<_> = names.iter().map(|n| dir.path().join(n)).collect();
    let want = common::ansible_oracle(
        "template module",
        TEMPLATE_MODULE,
        &[],
        &serde_json::json!({"vars": vars(), "files": paths}),
    );
    assert_eq!(want.len(), FILES.len(), "one oracle line per file");
    let t = Templates::load(dir.path()).unwrap();
    let ctx = minijinja::Value::from(minijinja::value::Serde(vars()));
    let mut wrong = Vec::new();
    for ((name, text), w) in names.iter().zip(FILES).zip(want) {
        let got = t.render_file(name, &ctx).map_err(|e| e.to_string());
        match w {
            Ok(w) if w.as_str() == got.as_deref().ok() => {}
            w => wrong.push(format!("{text:?}\n  ansible: {w:?}\n  rollout: {got:?}")),
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} differ:\n{}",
        wrong.len(),
        FILES.len(),
        wrong.join("\n")
    );
}
