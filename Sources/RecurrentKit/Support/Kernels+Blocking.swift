import _RecurrentKitKernels

/// The matrix products' cache blocking, chosen per CPU from its caches.
extension Kernels {
    /// One data cache as the blocking model reads it.
    public struct Cache: Equatable, Sendable, CustomStringConvertible {
        /// Capacity in bytes.
        public var bytes: Int
        /// Associativity; 0 when unknown.
        public var ways: Int
        /// Line size in bytes; 0 when unknown.
        public var lineBytes: Int
        /// Logical CPUs sharing it; 0 when unknown.
        public var sharedBy: Int

        /// "1 MiB 8-way", with "shared by 2 CPUs" when more than one logical CPU shares it.
        public var description: String {
            let size =
                bytes % (1 << 20) == 0 ? "\(bytes >> 20) MiB" : bytes % 1024 == 0 ? "\(bytes >> 10) KiB" : "\(bytes) B"
            return size + (ways > 0 ? " \(ways)-way" : "") + (sharedBy > 1 ? " shared by \(sharedBy) CPUs" : "")
        }

        init?(_ c: rk_cache_level) {
            guard c.bytes > 0 else { return nil }
            (bytes, ways, lineBytes, sharedBy) = (Int(c.bytes), Int(c.ways), Int(c.line), Int(c.shared_by))
        }
    }

    /// The data caches of this machine, detected once (never timed): x86 CPUID checked against Linux sysfs, sysfs alone
    /// on other Linux CPUs (aarch64), sysctl on Apple platforms.
    public struct Caches: Equatable, Sendable, CustomStringConvertible {
        /// The first-level data cache, the second- and third-level caches; nil when unknown or absent.
        public var l1d: Cache?, l2: Cache?, l3: Cache?
        /// Where they were read: "CPUID", "sysfs", "sysctl" or several joined by "+"; "none" when nothing was found
        /// (the blocking is then the kernels' compiled one).
        public var source: String
        /// The CPU, e.g. "AuthenticAMD family 25 model 17" (x86 CPUID) or "aarch64".
        public var cpu: String

        /// "L1d 32 KiB 8-way, L2 1 MiB 8-way, L3 32 MiB 16-way shared by 2 CPUs (CPUID+sysfs)".
        public var description: String {
            let levels = [("L1d", l1d), ("L2", l2), ("L3", l3)].compactMap { name, c in c.map { "\(name) \($0)" } }
            return (levels.isEmpty ? "caches unknown" : levels.joined(separator: ", ")) + " (\(source))"
        }

        /// This machine's caches.
        public static var detected: Caches {
            let c = rk_detected_caches()
            let sources = [(RK_CACHES_CPUID, "CPUID"), (RK_CACHES_SYSFS, "sysfs"), (RK_CACHES_SYSCTL, "sysctl")]
                .filter { c.source & Int32($0.0) != 0 }.map(\.1)
            return Caches(
                l1d: Cache(c.l1d), l2: Cache(c.l2), l3: Cache(c.l3),
                source: sources.isEmpty ? "none" : sources.joined(separator: "+"), cpu: String(cString: rk_cpu_name()))
        }
    }

    /// The blocking of one element type: the micro-tile `mr` x `nr` (fixed per ``Level``) and the cache blocks `kc`
    /// (the depth of one pass of multiply-adds, the only one that changes sums), `mc` (rows of the packed A block) and
    /// `nc` (columns of the packed B block).
    public struct BlockSizes: Equatable, Sendable, CustomStringConvertible {
        /// The micro-tile: rows and columns of C one kernel call keeps in registers.
        public var mr: Int, nr: Int
        /// Depth, rows and columns of the cache blocks.
        public var kc: Int, mc: Int, nc: Int

        /// "8x32 kc512 mc192 nc1024".
        public var description: String { "\(mr)x\(nr) kc\(kc) mc\(mc) nc\(nc)" }

        init(_ b: rk_block_sizes) {
            (mr, nr, kc, mc, nc) = (Int(b.mr), Int(b.nr), Int(b.kc), Int(b.mc), Int(b.nc))
        }
    }

    /// The blocking of the matrix products at one ``Level``: a pure function of the CPU's caches (an analytical model
    /// documented in the kernels' `blocking.c`), never of a timing or of the thread count, so runs on one machine are
    /// bit-identical for any ``threadCount``. Checkpoints record it (`__metadata__["kernel_blocking"]`) beside the
    /// kernel level: a resume is bit-exact where both agree.
    public struct Blocking: Equatable, Sendable, CustomStringConvertible {
        /// The level it belongs to (the tile is the level's).
        public var level: Level
        /// Float and Double products.
        public var float: BlockSizes, double: BlockSizes
        /// The caches it was computed from.
        public var caches: Caches

        /// "f32 8x32 kc512 mc192 nc1024, f64 8x16 kc256 mc224 nc1024": what checkpoints record.
        public var description: String { "f32 \(float), f64 \(double)" }

        /// True when a run recorded with `recorded` (a ``description``) sums exactly as this blocking does: the same
        /// tile and `kc` for both element types (`mc` and `nc` only partition rows and columns, never a sum). False
        /// for text that is not a blocking description.
        public func sumsLike(_ recorded: String) -> Bool {
            guard let depths = Self.depths(in: recorded) else { return false }
            return depths["f32"] == "\(float.mr)x\(float.nr) kc\(float.kc)"
                && depths["f64"] == "\(double.mr)x\(double.nr) kc\(double.kc)"
        }

        /// Tile and depth per element type ("f32" -> "8x32 kc512") of a description, nil unless `text` has the form
        /// ``description`` writes.
        static func depths(in text: String) -> [String: String]? {
            guard text.utf8.count <= 120 else { return nil }
            var out: [String: String] = [:]
            for part in text.split(separator: ",", omittingEmptySubsequences: false) {
                let words = part.split(separator: " ")
                guard words.count == 5, words[0] == "f32" || words[0] == "f64", out[String(words[0])] == nil else {
                    return nil
                }
                let tile = words[1].split(separator: "x")
                guard tile.count == 2, tile.allSatisfy({ Int($0).map { $0 > 0 } ?? false }) else { return nil }
                for (word, prefix) in zip(words[2...], ["kc", "mc", "nc"]) {
                    guard word.hasPrefix(prefix), let n = Int(word.dropFirst(2)), n > 0 else { return nil }
                }
                out[String(words[0])] = "\(words[1]) \(words[2])"
            }
            return out.count == 2 ? out : nil
        }

        /// Whether `text` is a blocking description (``description``'s form).
        public static func isDescription(_ text: String) -> Bool { depths(in: text) != nil }
    }

    /// The blocking the matrix products use now (at ``activeLevel``).
    public static var blocking: Blocking { blocking(at: activeLevel) }

    /// The blocking the matrix products use at `level` (levels above ``detectedLevel`` give the detected level's).
    public static func blocking(at level: Level) -> Blocking {
        let l = min(level.rawValue, detectedLevel.rawValue)
        return Blocking(
            level: Level(rawValue: l) ?? .portable, float: BlockSizes(rk_blocking(Int32(l), 4)),
            double: BlockSizes(rk_blocking(Int32(l), 8)), caches: .detected)
    }
}
