//! The fuzz harness: how a fuzzer's bytes become rollout's inputs, what rollout is run on them,
//! and what counts as a finding. Shared, through `#[path]`, by the libFuzzer targets in
//! `fuzz/fuzz_targets/` and by the corpus replay in `tests/fuzz_corpus.rs`, so the
//! seeds and every input a fuzzer once broke rollout with are replayed by `cargo test` too.
//!
//! # The `inputs` target: a whole project in one text
//!
//! An input is a command line and the files it names, as a person would write them in a
//! bug report (the `@@@` lines were chosen because no YAML or Jinja text starts a line that
//! way):
//!
//! ```text
//! plan                          <- one argument a line, `rollout` implied
//! inv.yml
//! --forks
//! 2
//! @@@ inv.yml                   <- a file, its text up to the next @@@ line
//! all: {hosts: {h1: {roles: [web]}}}
//! @@@ roles/web/steps.yml
//! - name: x
//!   file: {path: /etc/x, content: "{{ nope }}"}
//! @@@ fifo secrets/pipe         <- a FIFO (reading it would block)
//! @@@ link inv2.yml -> /dev/zero  <- a symbolic link, to anywhere
//! ```
//!
//! No argument line means `plan inv.yml`. The files land in a fresh folder that is the
//! current directory while the command runs. The command line is parsed by
//! [`rollout::cli::parse`], then everything that command does before it contacts a host or
//! the balancer is done: for `plan`/`apply` the inventory, roles, templates and plans
//! ([`rollout::app::load`]), the balancer section and its nodes, and each host's check and
//! apply scripts (all steps, all handlers); for the pool commands
//! [`rollout::pool::Pool::load`] and the `--batch-size` of `upgrade`. Nothing is contacted.
//!
//! # The `template` target
//!
//! A template, then optionally a `@@@ vars` line and variables (a JSON object); rendered as a file, as
//! an inline value and as a `when:` expression with the environment rollout renders with
//! (strict undefined, fuel, output cap, its filters), a secret among the variables.
//!
//! # Findings
//!
//! - a panic (libFuzzer saves the input as `crash-*`);
//! - more than [`MAX_LIVE_HEAP`] bytes of live heap ([`CappedAlloc`] aborts: `crash-*`);
//! - longer than the runner's `-timeout` per input (`timeout-*`);
//! - a secret canary (`S3CRET-canary`, any case) in the text rollout prints for an error,
//!   when no file but a secret's own and no argument holds it (a panic naming the text).

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The environment variable the seeds' inventories read a secret from (`env:CANARY_ENV`),
/// as in `../shared/cases/bad-input/`.
pub const CANARY_ENV: &str = "CANARY_ENV";

/// Its value: [`CANARY`] and a suffix.
pub const CANARY_ENV_VALUE: &str = "S3CRET-canary-ENV";

/// What every secret value in the seeds starts with; found in error text in any ASCII case.
pub const CANARY: &str = "S3CRET-canary";

/// The most live heap one input may use, in bytes (512 MiB: the `ulimit -v` the bad-input
/// cases run under).
pub const MAX_LIVE_HEAP: usize = 512 * 1024 * 1024;

/// The most files, FIFOs and links one input may create, and the most arguments.
const MAX_ENTRIES: usize = 64;

/// The deepest path (folders) a file of an input may have.
const MAX_DEPTH: usize = 8;

/// Live heap bytes of the process (see [`CappedAlloc`]).
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// The system allocator with a cap on live heap: past [`MAX_LIVE_HEAP`] it says so on
/// stderr and aborts, which libFuzzer records as a crash with the input that caused it. An
/// in-process stand-in for `ulimit -v` that names the cause; unlike libFuzzer's
/// `-rss_limit_mb` it stops the allocation that crosses the line, not a second later.
pub struct CappedAlloc;

// SAFETY: every method forwards to `System` with the caller's layout and pointer; the counter
// only observes sizes.
unsafe impl GlobalAlloc for CappedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !reserve(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded as is.
        let p = unsafe { System.alloc(layout) };
        if p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !reserve(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded as is.
        let p = unsafe { System.alloc_zeroed(layout) };
        if p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = layout.size();
        if new_size > old && !reserve(new_size - old) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded as is.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if p.is_null() {
            if new_size > old {
                LIVE.fetch_sub(new_size - old, Ordering::Relaxed);
            }
        } else if new_size < old {
            LIVE.fetch_sub(old - new_size, Ordering::Relaxed);
        }
        p
    }
}

/// Counts `size` more live bytes; past the cap, says so and aborts.
fn reserve(size: usize) -> bool {
    let now = LIVE.fetch_add(size, Ordering::Relaxed).saturating_add(size);
    if now > MAX_LIVE_HEAP {
        // No allocation here: we are inside the allocator.
        let msg = b"\nfuzz: FINDING: more than 512 MiB of live heap for one input (aborting)\n";
        // SAFETY: writing a static buffer to stderr.
        unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
        std::process::abort();
    }
    true
}

/// One `inputs` input, decoded.
#[derive(Debug, Default, PartialEq)]
pub struct Bundle {
    /// The arguments after `rollout`.
    pub args: Vec<OsString>,
    /// Files (path below the folder, content).
    pub files: Vec<(PathBuf, Vec<u8>)>,
    /// FIFOs to create.
    pub fifos: Vec<PathBuf>,
    /// Symbolic links (path below the folder, target as written).
    pub links: Vec<(PathBuf, OsString)>,
}

impl Bundle {
    /// Decodes any bytes (see the module doc); what cannot be used is left out.
    pub fn parse(data: &[u8]) -> Bundle {
        let mut b = Bundle::default();
        let mut lines = data.split_inclusive(|c| *c == b'\n').peekable();
        while let Some(line) = lines.next_if(|l| !l.starts_with(b"@@@ ")) {
            if b.args.len() < MAX_ENTRIES {
                let arg = line.strip_suffix(b"\n").unwrap_or(line);
                b.args.push(OsString::from_vec(arg.to_vec()));
            }
        }
        if b.args.is_empty() {
            b.args = vec!["plan".into(), "inv.yml".into()];
        }
        while let Some(head) = lines.next() {
            let head = head.strip_prefix(b"@@@ ").unwrap_or(head);
            let head = head.strip_suffix(b"\n").unwrap_or(head);
            let mut content = Vec::new();
            while let Some(l) = lines.next_if(|l| !l.starts_with(b"@@@ ")) {
                content.extend_from_slice(l);
            }
            if b.files.len() + b.fifos.len() + b.links.len() >= MAX_ENTRIES {
                continue;
            }
            if let Some(name) = head.strip_prefix(b"fifo ") {
                b.fifos.extend(clean_path(name));
            } else if let Some(spec) = head.strip_prefix(b"link ") {
                let Some(at) = find(spec, b" -> ") else {
                    continue;
                };
                if let Some(p) = clean_path(&spec[..at]) {
                    b.links
                        .push((p, OsString::from_vec(spec[at + 4..].to_vec())));
                }
            } else if let Some(p) = clean_path(head) {
                b.files.push((p, content));
            }
        }
        b
    }

    /// The input as text again (for seeds and for reading a finding).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for a in &self.args {
            out.extend_from_slice(a.as_bytes());
            out.push(b'\n');
        }
        for (p, content) in &self.files {
            out.extend_from_slice(b"@@@ ");
            out.extend_from_slice(p.as_os_str().as_bytes());
            out.push(b'\n');
            out.extend_from_slice(content);
            if !content.is_empty() && !content.ends_with(b"\n") {
                out.push(b'\n');
            }
        }
        for p in &self.fifos {
            out.extend_from_slice(b"@@@ fifo ");
            out.extend_from_slice(p.as_os_str().as_bytes());
            out.push(b'\n');
        }
        for (p, target) in &self.links {
            out.extend_from_slice(b"@@@ link ");
            out.extend_from_slice(p.as_os_str().as_bytes());
            out.extend_from_slice(b" -> ");
            out.extend_from_slice(target.as_bytes());
            out.push(b'\n');
        }
        out
    }

    /// Empties `root` and creates the input's files, FIFOs and links in it. Files first, then
    /// FIFOs, then links, each link only inside a folder of `root` itself: nothing is ever
    /// written through a link, so nothing outside `root` is touched.
    ///
    /// # Panics
    /// When `root` cannot be emptied (the harness cannot go on).
    pub fn write(&self, root: &Path) {
        empty_dir(root);
        for (p, content) in &self.files {
            let path = root.join(p);
            if let Some(parent) = path.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)
            {
                let _ = f.write_all(content);
            }
        }
        for p in &self.fifos {
            let path = root.join(p);
            if let Some(parent) = path.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            if let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) {
                // SAFETY: a NUL-terminated path.
                unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
            }
        }
        let real_root = std::fs::canonicalize(root).expect("the fuzz folder exists");
        for (p, target) in &self.links {
            let path = root.join(p);
            let inside = path
                .parent()
                .and_then(|d| std::fs::canonicalize(d).ok())
                .is_some_and(|d| d.starts_with(&real_root));
            if inside {
                let _ = std::os::unix::fs::symlink(target, &path);
            }
        }
    }

    /// Does an argument or a file that is not a secret's own hold the canary? Then it is
    /// ordinary text the operator wrote, and an error may quote it. A secret's own file is
    /// one another file names in a `file:` reference (its name after `file:`); a file's name
    /// alone (`secret_malformed.yml` is an inventory) says nothing.
    fn canary_in_plain_input(&self) -> bool {
        let secret_file = |p: &Path| {
            let Some(name) = p.file_name().map(|n| n.as_bytes()) else {
                return false;
            };
            self.files.iter().any(|(q, c)| {
                q != p
                    && find(c, b"file:").is_some_and(|at| {
                        c[at..]
                            .split(|b| matches!(b, b'"' | b'\'' | b'}' | b'\n' | b' '))
                            .next()
                            .is_some_and(|r| r.ends_with(name))
                    })
            })
        };
        self.args.iter().any(|a| has_canary(a.as_bytes()))
            || self
                .files
                .iter()
                .any(|(p, c)| !secret_file(p) && has_canary(c))
            || self
                .links
                .iter()
                .any(|(p, t)| has_canary(p.as_os_str().as_bytes()) || has_canary(t.as_bytes()))
    }
}

/// A relative path from an input, without `.`, `..`, empty or overlong parts; None when
/// nothing is left or it is too deep.
fn clean_path(raw: &[u8]) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    let mut depth = 0;
    for part in Path::new(OsStr::from_bytes(raw)).components() {
        if let Component::Normal(p) = part {
            if p.len() > 100 || p.as_bytes().contains(&0) {
                return None;
            }
            out.push(p);
            depth += 1;
        }
    }
    (depth > 0 && depth <= MAX_DEPTH).then_some(out)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Does `text` hold [`CANARY`] in any ASCII case?
pub fn has_canary(text: &[u8]) -> bool {
    let needle = CANARY.as_bytes();
    text.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// Removes everything inside `root` (links are removed, never followed).
fn empty_dir(root: &Path) {
    for e in std::fs::read_dir(root).expect("the fuzz folder is readable") {
        let Ok(e) = e else { continue };
        let p = e.path();
        let is_dir = std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir());
        let r = if is_dir {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        r.unwrap_or_else(|e| panic!("cannot empty the fuzz folder ({}): {e}", p.display()));
    }
}

/// The process-wide setup every target needs once: the canary secret in the environment and
/// a fresh folder as the current directory (where inputs' relative paths point). Returns
/// the folder.
///
/// # Panics
/// When the folder cannot be made.
pub fn setup() -> PathBuf {
    // SAFETY: called once, before the harness runs anything that reads the environment
    // (libFuzzer's own threads do not).
    unsafe { std::env::set_var(CANARY_ENV, CANARY_ENV_VALUE) };
    let dir = std::env::temp_dir().join(format!("rollout-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a folder for the fuzz inputs");
    std::env::set_current_dir(&dir).expect("into the fuzz folder");
    let _ = FOLDER.set(dir.clone());
    // SAFETY: registers a plain function; libFuzzer and the test harness end with exit().
    unsafe { libc::atexit(remove_folder) };
    dir
}

/// The folder [`setup`] made, removed again when the process exits.
static FOLDER: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

extern "C" fn remove_folder() {
    if let Some(dir) = FOLDER.get() {
        let _ = std::env::set_current_dir(std::env::temp_dir());
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Runs one `inputs` input in `root` (the current directory, see [`setup`]): writes its
/// files, parses its command line and does everything the command does before contacting
/// anything. Returns the text rollout would print for its errors.
///
/// # Panics
/// On a finding: a panic of rollout itself, or the canary in the printed error text (see the
/// module doc).
pub fn run_inputs(data: &[u8], root: &Path) -> String {
    let bundle = Bundle::parse(data);
    bundle.write(root);
    rollout::secret::forget_known();
    let mut argv = vec![OsString::from("rollout")];
    argv.extend(bundle.args.iter().cloned());
    let printed = match rollout::cli::parse(argv) {
        Err(e) => e.render().to_string(),
        Ok(cmd) => run_command(cmd),
    };
    if has_canary(printed.as_bytes()) && !bundle.canary_in_plain_input() {
        panic!("fuzz: FINDING: a secret canary in the error text rollout prints:\n{printed}");
    }
    printed
}

/// Everything `cmd` does before it contacts a host or the balancer; the error text it would
/// print (as `subcommand::Error::print` does: every line through `redact_known`).
fn run_command(cmd: rollout::subcommand::Subcommand) -> String {
    use rollout::subcommand::Subcommand;
    let none = serde_json::Map::new();
    let result = match cmd {
        Subcommand::Run { options, .. } => rollout::app::load(&options, &none).and_then(|p| {
            rollout::pool::register::prepare(&options, &p)?;
            for plan in &p.plans {
                scripts(plan);
            }
            Ok(())
        }),
        Subcommand::Drain(d) => rollout::pool::Pool::load(&d.run, &none, "drain").map(drop),
        Subcommand::Undrain(o) => rollout::pool::Pool::load(&o, &none, "undrain").map(drop),
        Subcommand::Status(o) => rollout::pool::Pool::load(&o, &none, "status").map(drop),
        Subcommand::Inventory(q) => rollout::app::inventory(&q).map(drop),
        Subcommand::Exec(r) => rollout::adhoc::validate(&r)
            .and_then(|()| rollout::app::load_hosts(&r.options).map(drop)),
        Subcommand::Print(_) => Ok(()),
        Subcommand::Upgrade(u) => match rollout::pool::batch::Batches::parse(&u.batch_size) {
            Err(e) => {
                return format!("error: {}\n", rollout::secret::redact_known(&e.to_string()));
            }
            Ok(b) => {
                for total in [1, 3, 1000] {
                    for i in 0..4 {
                        assert!(b.size(i, total) >= 1, "a batch of no node");
                    }
                }
                let mut vars = serde_json::Map::new();
                vars.insert("rollout_upgrade".into(), true.into());
                rollout::pool::Pool::load(&u.run, &vars, "upgrade").map(drop)
            }
        },
    };
    match result {
        Ok(()) => String::new(),
        Err(ds) => ds
            .iter()
            .map(|d| rollout::secret::redact_known(&d.to_string()) + "\n")
            .collect(),
    }
}

/// Builds a host's check script and the apply script of every step and handler.
fn scripts(plan: &rollout::plan::HostPlan) {
    use rollout::plan::Item;
    let nonce = rollout::script::Nonce("0123456789abcdef".into());
    let _ = rollout::plan::check_script(plan, &nonce);
    let items: Vec<Item> = (0..plan.steps.len())
        .map(Item::Step)
        .chain((0..plan.handlers.len()).map(Item::Handler))
        .collect();
    let _ = rollout::plan::apply_script(plan, &items, &nonce);
}

/// Runs one `template` input: a template and `@@@ vars` (a JSON object), rendered with rollout's
/// environment as a file, as an inline value and as a `when:` expression, with the variable
/// `secret` holding a secret. Returns the error texts.
///
/// # Panics
/// On a finding: a panic of rollout or minijinja, or the canary in an error's text.
pub fn run_template(data: &[u8], root: &Path) -> String {
    use rollout::template::{Templates, Tracked};
    let (tmpl, vars) = match find(data, b"\n@@@ vars\n") {
        Some(at) => (&data[..at], &data[at + 10..]),
        None => (data, &b""[..]),
    };
    let Ok(tmpl) = std::str::from_utf8(tmpl) else {
        return String::new();
    };
    rollout::secret::forget_known();
    let mut map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(vars).unwrap_or_default();
    map.insert("secret".into(), CANARY_ENV_VALUE.into());
    // Registers the value for redaction, as resolving a secret reference does.
    let _secrets = rollout::secret::Secrets::new(vec![CANARY_ENV_VALUE.to_string()]);
    let names = std::sync::Arc::new(std::iter::once("secret".to_string()).collect());
    let ctx = Tracked::new(minijinja::Value::from(minijinja::value::Serde(&map)), names).value();

    empty_dir(root);
    std::fs::create_dir_all(root.join("templates")).expect("templates folder");
    std::fs::write(root.join("templates/t.j2"), tmpl).expect("template file");
    let mut errors = Vec::new();
    match Templates::load(&root.join("templates")) {
        Err(d) => errors.push(d.to_string()),
        Ok(t) => {
            if let Err(e) = t.render_file("t.j2", &ctx) {
                errors.push(e.to_string());
                errors.extend(t.diagnostic(&e, "fuzz").map(|d| d.to_string()));
            }
        }
    }
    let inline = Templates::empty();
    if let Err(e) = inline.render_str(tmpl, &ctx) {
        errors.push(e.to_string());
    }
    if let Err(e) = inline.eval_bool(tmpl, &ctx) {
        errors.push(e.to_string());
    }
    let printed: String = errors
        .iter()
        .map(|e| rollout::secret::redact_known(e) + "\n")
        .collect();
    if has_canary(printed.as_bytes()) && !has_canary(data) {
        panic!("fuzz: FINDING: a secret canary in a template error:\n{printed}");
    }
    printed
}
