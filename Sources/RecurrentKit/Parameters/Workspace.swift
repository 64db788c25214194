import _RecurrentKitKernels

/// 64-byte aligned, zero-filled allocation (vector loads need alignment; `allocate` gives 16). Blocks of 4 MiB and
/// more come on transparent huge pages where Linux allows it (`rk_alloc`): streaming weights then misses the TLB far
/// less. Free with ``freeAligned(_:)``.
func allocateAligned<T>(_ type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
    let bytes = max(count, 1) * MemoryLayout<T>.stride
    guard let raw = rk_alloc(bytes) else { fatalError("out of memory allocating \(bytes) bytes") }
    raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
    return raw.bindMemory(to: T.self, capacity: max(count, 1))
}

/// Frees memory from ``allocateAligned(_:count:)``.
func freeAligned<T>(_ pointer: UnsafeMutablePointer<T>) { rk_free(pointer) }

/// A growable scratch buffer of scalars, 64-byte aligned and zero-filled when (re)allocated, reused across steps so
/// hot loops do not allocate: `reserve` only allocates when asked for more than it holds. The layers keep their
/// activations in workspaces; a model of your own can keep its intermediate buffers in them the same way.
///
/// Not thread-safe: one owner uses it at a time.
public final class Workspace<Scalar: RecurrentScalar> {
    /// The current buffer (`capacity` elements); moves when `reserve` grows it.
    public private(set) var pointer: UnsafeMutablePointer<Scalar>
    /// Elements the current buffer holds (at least 1).
    public private(set) var capacity: Int

    /// An empty workspace, or one holding `capacity` zeros.
    public init(capacity: Int = 0) {
        self.capacity = max(capacity, 1)
        pointer = allocateAligned(Scalar.self, count: self.capacity)
    }

    deinit { freeAligned(pointer) }

    /// A buffer of at least `count` elements, valid until the next growing `reserve`; contents are kept when it
    /// does not grow and unspecified when it does.
    @discardableResult
    public func reserve(_ count: Int) -> UnsafeMutablePointer<Scalar> {
        if count > capacity {
            freeAligned(pointer)
            capacity = count
            pointer = allocateAligned(Scalar.self, count: count)
        }
        return pointer
    }
}
