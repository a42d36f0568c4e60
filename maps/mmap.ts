// Read-only memory maps of table files, so that opening a large cdb table
// costs no copy (the reference maps its files too). Uses libc through Deno's
// FFI; where FFI is not permitted the file is read into memory instead.

/** A file's bytes and how to let go of them. */
export interface MappedFile {
  data: Uint8Array;
  release(): void;
}

type Libc = Deno.DynamicLibrary<{
  open: { parameters: ["buffer", "i32"]; result: "i32" };
  close: { parameters: ["i32"]; result: "i32" };
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"]; result: "pointer" };
  munmap: { parameters: ["pointer", "usize"]; result: "i32" };
}>;

let libc: Libc | null | undefined;

function loadLibc(): Libc | null {
  if (libc !== undefined) return libc;
  try {
    libc = Deno.dlopen("libc.so.6", {
      open: { parameters: ["buffer", "i32"], result: "i32" },
      close: { parameters: ["i32"], result: "i32" },
      mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
      munmap: { parameters: ["pointer", "usize"], result: "i32" },
    });
  } catch {
    libc = null; // no FFI permission, or not Linux/glibc
  }
  return libc;
}

const PROT_READ = 1;
const MAP_SHARED = 1;
const MAP_FAILED = 0xffffffffffffffffn;

/**
 * Maps `path` read-only (or reads it). Errors opening the file are thrown
 * as Deno's own errors. The file must not be truncated while mapped: tables
 * are replaced by rename, never rewritten in place.
 */
export function mapFile(path: string): MappedFile {
  const size = Deno.statSync(path).size; // throws NotFound etc. as usual
  const lib = size > 0 ? loadLibc() : null;
  if (lib) {
    const fd = lib.symbols.open(new TextEncoder().encode(path + "\0"), 0);
    if (fd >= 0) {
      const ptr = lib.symbols.mmap(null, BigInt(size), PROT_READ, MAP_SHARED, fd, 0n);
      lib.symbols.close(fd);
      if (ptr && Deno.UnsafePointer.value(ptr) !== MAP_FAILED) {
        const data = new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(ptr, size));
        let mapped = true;
        return {
          data,
          release: () => {
            if (mapped) lib.symbols.munmap(ptr, BigInt(size));
            mapped = false;
          },
        };
      }
    }
  }
  return { data: readWhole(path), release: () => {} };
}

function readWhole(path: string): Uint8Array {
  const f = Deno.openSync(path);
  try {
    const size = f.statSync().size;
    const buf = new Uint8Array(size);
    let off = 0;
    while (off < size) {
      const n = f.readSync(buf.subarray(off));
      if (!n) break;
      off += n;
    }
    return off === size ? buf : buf.subarray(0, off);
  } finally {
    f.close();
  }
}
