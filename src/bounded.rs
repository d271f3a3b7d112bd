//! Reading the operator's files safely: only regular files, never more than a cap. A FIFO,
//! `/dev/zero` or a device given as an inventory, template or secret file would otherwise
//! block forever or read until memory runs out; every place rollout reads a file the operator
//! named goes through [`read_to_string`] or [`read`] (YAML files through
//! `yaml::Source::read`), or [`check`] where another reader opens the file.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The largest YAML, template or secret file rollout reads, in bytes (10 MiB).
pub const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A FIFO, socket, device or folder: reading it could block or never end.
    #[error("not a regular file")]
    NotRegular,
    /// Larger than the cap (bytes).
    #[error("file is larger than {} MiB", .0 / (1024 * 1024))]
    TooLarge(u64),
    /// Valid size and type, but not UTF-8 text.
    #[error("file is not valid UTF-8")]
    NotUtf8,
    /// Missing, unreadable, or failed while reading.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Refuses `path` unless it is a regular file (symbolic links followed) of at most `cap`
/// bytes. Only looks at metadata: nothing is opened, so a FIFO cannot block.
pub fn check(path: &Path, cap: u64) -> Result<(), ReadError> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular);
    }
    if meta.len() > cap {
        return Err(ReadError::TooLarge(cap));
    }
    Ok(())
}

/// Reads a regular file of at most `cap` bytes as UTF-8 text.
///
/// The file is opened with `O_NONBLOCK` so that a FIFO swapped in after [`check`] does not
/// block the open; its type is checked again on the open handle, and the read stops after
/// `cap` bytes in case the file grows.
pub fn read_to_string(path: &Path, cap: u64) -> Result<String, ReadError> {
    String::from_utf8(read(path, cap)?).map_err(|_| ReadError::NotUtf8)
}

/// Reads a regular file of at most `cap` bytes, as [`read_to_string`] does, without asking
/// for UTF-8 (a caller that locates the first bad byte itself).
///
/// # Errors
/// [`ReadError::NotRegular`], [`ReadError::TooLarge`] or the I/O error.
pub fn read(path: &Path, cap: u64) -> Result<Vec<u8>, ReadError> {
    check(path, cap)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(ReadError::NotRegular);
    }
    let mut bytes = Vec::new();
    file.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(ReadError::TooLarge(cap));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_devices_fifos_and_large_files() {
        assert!(matches!(
            read_to_string(Path::new("/dev/zero"), MAX_FILE_BYTES),
            Err(ReadError::NotRegular)
        ));
        let dir = std::env::temp_dir().join(format!("rollout-bounded-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        let _ = std::fs::remove_file(&fifo);
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo has no other preconditions.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert_eq!(
            read_to_string(&fifo, MAX_FILE_BYTES)
                .unwrap_err()
                .to_string(),
            "not a regular file"
        );
        let big = dir.join("big");
        // Sparse: no 10 MiB written to disk.
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(MAX_FILE_BYTES + 1).unwrap();
        assert_eq!(
            read_to_string(&big, MAX_FILE_BYTES)
                .unwrap_err()
                .to_string(),
            "file is larger than 10 MiB"
        );
        std::fs::write(&big, "x".repeat(11)).unwrap();
        assert_eq!(read_to_string(&big, 11).unwrap(), "x".repeat(11));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// A budget for one template render, in memory and time: minijinja's fuel counts
/// instructions and the output is capped, but a few instructions can double a value forty
/// times (`{% set x = x ~ x %}` in a loop or a recursive macro) or make a filter walk a lazy
/// sequence of 2^40 items. While a render runs ([`render::within`]), the heap the rendering
/// thread grows by is counted (by [`render::BudgetAlloc`], the binary's global allocator) and
/// a watchdog thread watches the rendering thread's CPU time (and, as a backstop, the wall
/// clock); past [`render::MAX_HEAP_BYTES`], [`render::MAX_SECONDS`] of CPU time or
/// [`render::MAX_WALL_SECONDS`] rollout stops at once with exit code 2 and names the template,
/// before the value is built (nothing is allocated past the budget, nothing on a host is
/// changed by that render: templates are rendered while planning).
pub mod render {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    /// The most one render may grow its thread's heap by, in bytes (512 MiB).
    pub const MAX_HEAP_BYTES: isize = 512 * 1024 * 1024;
    /// The most CPU time one render may use, in seconds. CPU time of the rendering thread,
    /// not wall time: on a loaded controller a render that fits the budget must not be
    /// stopped because other processes had the cores (a wall-clock limit made the outcome
    /// depend on the machine's load).
    pub const MAX_SECONDS: u64 = 5;
    /// The longest one render may take on the wall clock, in seconds: a backstop for a render
    /// that waits instead of computing (rendering reads nothing that can block, so this should
    /// never be what stops one).
    pub const MAX_WALL_SECONDS: u64 = 60;

    /// Where the text being rendered was written and for which host, named when the budget
    /// is spent (`FILE:LINE:COLUMN: rendering ... for host H`). Borrowed: setting one with
    /// [`at`] copies two pointers per field and allocates nothing.
    #[derive(Clone, Copy, Debug)]
    pub struct Place<'a> {
        /// The file (a role's `steps.yml`, the inventory, a `defaults.yml`), or empty.
        pub file: &'a Path,
        /// Appended to `file` (`-e` values: file `-e ` and suffix the variable's name).
        pub file_suffix: &'a str,
        /// Line and column (1-based) of the value in `file`; 0 when not known.
        pub line: u64,
        pub column: u64,
        /// The host whose values are rendered, or empty.
        pub host: &'a str,
    }

    impl Default for Place<'_> {
        /// Nowhere: the message names only what was rendered.
        fn default() -> Self {
            Place {
                file: Path::new(""),
                file_suffix: "",
                line: 0,
                column: 0,
                host: "",
            }
        }
    }

    /// A borrowed text kept as a pointer and length, so that a [`Part`]s record can live in
    /// a thread-local and in [`RUNNING`] without copying the text.
    #[derive(Clone, Copy)]
    struct Text(*const u8, usize);

    impl Text {
        const EMPTY: Text = Text(std::ptr::null(), 0);

        fn of(b: &[u8]) -> Text {
            Text(b.as_ptr(), b.len())
        }

        /// # Safety
        /// The text this was made from must still be alive (see [`Parts`]).
        unsafe fn bytes<'a>(self) -> &'a [u8] {
            if self.1 == 0 {
                return &[];
            }
            // SAFETY: by the caller, a live slice of this length.
            unsafe { std::slice::from_raw_parts(self.0, self.1) }
        }
    }

    /// What is being rendered and where: the kind and name given to [`within`] and the
    /// [`Place`] set by [`at`]. Its texts are borrowed for as long as the render runs (both
    /// functions hold their borrows across `f`); the watchdog holds [`RUNNING`]'s lock while
    /// it reads them, and a render removes its entry under that lock before it returns.
    #[derive(Clone, Copy)]
    struct Parts {
        kind: Text,
        name: Text,
        file: Text,
        file_suffix: Text,
        line: u64,
        column: u64,
        host: Text,
    }

    // SAFETY: the pointers are only read while the texts are alive (see `Parts`); they are
    // never written through.
    unsafe impl Send for Parts {}

    impl Parts {
        const EMPTY: Parts = Parts {
            kind: Text::EMPTY,
            name: Text::EMPTY,
            file: Text::EMPTY,
            file_suffix: Text::EMPTY,
            line: 0,
            column: 0,
            host: Text::EMPTY,
        };
    }

    thread_local! {
        /// Whether this thread is inside [`within`].
        static ACTIVE: Cell<bool> = const { Cell::new(false) };
        /// Bytes this thread's render allocated minus what it freed.
        static GROWN: Cell<isize> = const { Cell::new(0) };
        /// What this thread renders (the place from [`at`], the kind and name from
        /// [`within`]); nothing may be allocated once the budget is spent.
        static PARTS: Cell<Parts> = const { Cell::new(Parts::EMPTY) };
    }

    /// A render in progress, for the watchdog.
    struct Running {
        id: u64,
        started: Instant,
        /// The rendering thread's CPU clock (`pthread_getcpuclockid`), if the system gave one.
        cpu_clock: Option<libc::clockid_t>,
        parts: Parts,
    }

    impl Running {
        /// Whether this render is past its time budget: CPU time of its thread, or the wall
        /// clock backstop.
        fn late(&self) -> bool {
            if self.started.elapsed() > Duration::from_secs(MAX_WALL_SECONDS) {
                return true;
            }
            let Some(clock) = self.cpu_clock else {
                // No CPU clock: the wall clock at the CPU limit is the best left.
                return self.started.elapsed() > Duration::from_secs(MAX_SECONDS);
            };
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: clock_gettime writes one timespec. The thread is alive: it removes its
            // entry (under the lock the watchdog holds while calling this) before `within`
            // returns.
            let ok = unsafe { libc::clock_gettime(clock, &mut ts) } == 0;
            ok && ts.tv_sec as u64 >= MAX_SECONDS
        }
    }

    /// The calling thread's CPU-time clock.
    fn thread_cpu_clock() -> Option<libc::clockid_t> {
        let mut clock: libc::clockid_t = 0;
        // SAFETY: pthread_self is always valid; the call writes one clockid_t.
        let rc = unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut clock) };
        (rc == 0).then_some(clock)
    }

    /// Renders in progress, for the watchdog.
    static RUNNING: Mutex<Vec<Running>> = Mutex::new(Vec::new());
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    static WATCHDOG: std::sync::Once = std::sync::Once::new();

    /// Runs `f` with `place` as where this thread's renders come from (restored after: places
    /// nest). On the hot path: only pointers are copied.
    pub fn at<T>(place: Place<'_>, f: impl FnOnce() -> T) -> T {
        let before = PARTS.with(Cell::get);
        let mut parts = before;
        parts.file = Text::of(place.file.as_os_str().as_bytes());
        parts.file_suffix = Text::of(place.file_suffix.as_bytes());
        parts.line = place.line;
        parts.column = place.column;
        parts.host = Text::of(place.host.as_bytes());
        struct Restore(Parts);
        impl Drop for Restore {
            fn drop(&mut self) {
                PARTS.with(|p| p.set(self.0));
            }
        }
        let _restore = Restore(before);
        PARTS.with(|p| p.set(parts));
        f()
    }

    /// Runs `f` (one render of `kind` `name`, such as `template` `bbb/x.j2`, or
    /// `a templated value` and `""`) within the budget, at the place set by [`at`]. Renders
    /// nested in one another count once, as the outermost. On the hot path: nothing is
    /// allocated or formatted here (pointers are copied); the message is put together only
    /// when the budget is spent ([`stop`]).
    pub fn within<T>(kind: &'static str, name: &str, f: impl FnOnce() -> T) -> T {
        if ACTIVE.with(Cell::get) {
            return f();
        }
        // Names (a template's file, a kind of value, a place), never a rendered value.
        let before = PARTS.with(Cell::get);
        let mut parts = before;
        parts.kind = Text::of(kind.as_bytes());
        parts.name = Text::of(name.as_bytes());
        let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        WATCHDOG.call_once(|| {
            let _ = std::thread::Builder::new()
                .name("render-watchdog".into())
                .spawn(watchdog);
        });
        if let Ok(mut r) = RUNNING.lock() {
            r.push(Running {
                id,
                started: Instant::now(),
                cpu_clock: thread_cpu_clock(),
                parts,
            });
        }
        PARTS.with(|p| p.set(parts));
        GROWN.with(|g| g.set(0));
        ACTIVE.with(|a| a.set(true));
        struct Reset(u64, Parts);
        impl Drop for Reset {
            fn drop(&mut self) {
                ACTIVE.with(|a| a.set(false));
                PARTS.with(|p| p.set(self.1));
                // Under the lock: the watchdog may be reading this entry's texts.
                if let Ok(mut r) = RUNNING.lock() {
                    r.retain(|run| run.id != self.0);
                }
            }
        }
        let _reset = Reset(id, before);
        f()
    }

    fn watchdog() {
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let Ok(r) = RUNNING.lock() else { continue };
            if let Some(Running { parts, .. }) = r.iter().find(|run| run.late()) {
                // The lock stays held: the render cannot return and free the texts.
                stop(parts);
            }
        }
    }

    /// Says what was being rendered, where and for which host
    /// (`error: FILE:LINE:COLUMN: rendering KIND NAME for host H needs more than ...`), and
    /// ends the process with exit code 2, allocating nothing.
    fn stop(parts: &Parts) -> ! {
        const LIMITS: &str = concat!(
            " needs more than 512 MiB or 5 s of CPU time (a value that grows without bound, such as a ",
            "string doubled in a loop?); rollout stopped\n"
        );
        // The text above names the limits: it must change with them.
        const _: () = assert!(MAX_HEAP_BYTES == 512 * 1024 * 1024 && MAX_SECONDS == 5);
        let write = |b: &[u8]| {
            // SAFETY: write(2) on a valid buffer; no allocation.
            unsafe { libc::write(2, b.as_ptr().cast(), b.len()) };
        };
        let mut line = [0u8; 20];
        let mut column = [0u8; 20];
        // SAFETY: the texts are alive (see `Parts`).
        let (kind, name, file, suffix, host) = unsafe {
            (
                parts.kind.bytes(),
                parts.name.bytes(),
                parts.file.bytes(),
                parts.file_suffix.bytes(),
                parts.host.bytes(),
            )
        };
        write(b"error: ");
        if !file.is_empty() {
            write(file);
            write(suffix);
            if parts.line > 0 {
                write(b":");
                write(decimal(parts.line, &mut line));
                write(b":");
                write(decimal(parts.column.max(1), &mut column));
            }
            write(b": ");
        }
        write(b"rendering ");
        write(kind);
        if !name.is_empty() {
            write(b" ");
            write(name);
        }
        if !host.is_empty() {
            write(b" for host ");
            write(host);
        }
        write(LIMITS.as_bytes());
        // SAFETY: _exit: no destructor runs, no allocation.
        unsafe { libc::_exit(2) }
    }

    /// `n` in decimal, written at the end of `buf`.
    fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
        let mut i = buf.len();
        loop {
            i -= 1;
            buf[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                return &buf[i..];
            }
        }
    }

    /// The system allocator, counting what a render grows its thread's heap by (see the
    /// module's text). Install it as the binary's `#[global_allocator]`.
    pub struct BudgetAlloc;

    impl BudgetAlloc {
        #[inline]
        fn grow(size: usize) {
            if ACTIVE.with(Cell::get) {
                let now = GROWN.with(|g| {
                    let n = g.get().saturating_add(size as isize);
                    g.set(n);
                    n
                });
                if now > MAX_HEAP_BYTES {
                    stop(&PARTS.with(Cell::get));
                }
            }
        }

        #[inline]
        fn shrink(size: usize) {
            if ACTIVE.with(Cell::get) {
                GROWN.with(|g| g.set(g.get().saturating_sub(size as isize)));
            }
        }
    }

    // SAFETY: every call is passed to the system allocator unchanged; only counted.
    unsafe impl GlobalAlloc for BudgetAlloc {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            Self::grow(layout.size());
            unsafe { System.alloc(layout) }
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            Self::grow(layout.size());
            unsafe { System.alloc_zeroed(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            Self::shrink(layout.size());
            unsafe { System.dealloc(ptr, layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            if new_size > layout.size() {
                Self::grow(new_size - layout.size());
            } else {
                Self::shrink(layout.size() - new_size);
            }
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }
}
