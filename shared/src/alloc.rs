//! The allocator settings of a process that renders (the CLI, the local stack, the Lambdas).
//!
//! glibc's malloc gives each thread that allocates concurrently its own arena, up to eight per
//! core, and keeps an arena's freed pages for reuse. Renders run on many blocking and rayon
//! threads, so after a flood of renders each arena holds the high-water mark of the renders
//! that ran on it: measured on the local stack's flood test (docs/limits.md), the peak RSS was
//! about twice the render budget. Capping the arenas at the core count keeps the freed memory
//! of one render available to the next one instead (the same flood peaked at half the RSS).

/// Caps glibc's malloc at one arena per core (at least 2). Call once, early in `main` (arenas
/// created before the call are kept). No effect with other C libraries, nor when the operator
/// set `MALLOC_ARENA_MAX` (glibc's own setting, which then stands).
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
            return;
        }
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
        let arenas = libc::c_int::try_from(cores).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only sets a malloc parameter, under malloc's own lock; a refused value
        // leaves the default in place (it returns 0, which is not an error worth reporting).
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}
