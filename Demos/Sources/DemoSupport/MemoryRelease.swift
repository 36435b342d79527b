#if canImport(Glibc)
import Glibc
#endif

/// Hands the heap memory freed by a large one-off job (loading a version, building an index)
/// back to the system. glibc keeps freed memory for reuse, so a process that built 100 MB of
/// buffers would keep that much resident although it holds none of it. Blocking (it walks the
/// heap): call it off the event loops.
public func releaseFreedMemory() {
    #if canImport(Glibc)
    // glibc's malloc_trim (malloc.h is not part of the Glibc module).
    typealias MallocTrim = @convention(c) (Int) -> Int32
    if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") {  // RTLD_DEFAULT
        _ = unsafeBitCast(symbol, to: MallocTrim.self)(0)
    }
    #endif
}
