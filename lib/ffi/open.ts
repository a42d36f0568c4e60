// The C library through Deno's FFI, shared by every module that calls it
// (lib/ffi/libc.ts, lib/ffi/identity.ts, lib/mailbox/fd.ts): each declares
// the symbols it needs and opens them on first use.

/** The names the C library goes by: glibc, then musl on x86_64 and aarch64. */
const libcNames = ["libc.so.6", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1", "libc.so"];

/** Opens the C library with `symbols`; throws the last dlopen error when none opens. */
export function openLibc<const S extends Deno.ForeignLibraryInterface>(
  symbols: S,
): Deno.DynamicLibrary<S>["symbols"] {
  let lastError: unknown;
  for (const name of libcNames) {
    try {
      return Deno.dlopen(name, symbols).symbols;
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError;
}

/** errno after a failed call, read through the library's __errno_location(). */
export function readErrno(errnoLocation: () => Deno.PointerValue): number {
  const ptr = errnoLocation();
  return ptr ? new Deno.UnsafePointerView(ptr).getInt32() : 0;
}
