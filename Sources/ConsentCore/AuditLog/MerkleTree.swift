import Crypto

/// RFC 9162 (Certificate Transparency 2.0) Merkle tree hashing and proofs, as pure functions.
///
/// Hashes are 32-byte SHA-256 values as `[UInt8]`. Proofs are computed from the hashes of *perfect* subtrees
/// (aligned runs of 2^level leaves), which is what the store keeps, so a proof costs O(log n) stored hashes and
/// never a scan of the leaves.
public enum MerkleTree {
    /// MTH({}) = SHA-256 of the empty string.
    public static let emptyRoot: [UInt8] = Array(SHA256.hash(data: [UInt8]()))

    /// SHA-256(0x00 || data).
    public static func leafHash(_ data: [UInt8]) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(data: [0x00])
        hasher.update(data: data)
        return Array(hasher.finalize())
    }

    /// SHA-256(0x01 || left || right).
    public static func nodeHash(_ left: [UInt8], _ right: [UInt8]) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(data: [0x01])
        hasher.update(data: left)
        hasher.update(data: right)
        return Array(hasher.finalize())
    }

    /// MTH(D[n]) straight from the definition (RFC 9162 section 2.1.1), over leaf hashes.
    public static func root(_ leafHashes: ArraySlice<[UInt8]>) -> [UInt8] {
        switch leafHashes.count {
        case 0: return emptyRoot
        case 1: return leafHashes[leafHashes.startIndex]
        default:
            let k = largestPowerOfTwo(below: Int64(leafHashes.count))
            let split = leafHashes.startIndex + Int(k)
            return nodeHash(root(leafHashes[..<split]), root(leafHashes[split...]))
        }
    }

    /// The largest power of two strictly less than n (n > 1): RFC 9162's k.
    public static func largestPowerOfTwo(below n: Int64) -> Int64 {
        precondition(n > 1)
        return Int64(1) << (63 - (n - 1).leadingZeroBitCount)
    }
}

/// An aligned perfect subtree: leaves [index · 2^level, (index + 1) · 2^level). Level 0 is a single leaf.
public struct Subtree: Hashable, Sendable, CustomStringConvertible {
    public let level: Int
    public let index: Int64

    public init(level: Int, index: Int64) {
        self.level = level
        self.index = index
    }

    public var leaves: Range<Int64> { (index << level)..<((index + 1) << level) }
    public var description: String { "subtree(level \(level), index \(index))" }
}

extension MerkleTree {
    /// The perfect subtrees that make up a range of leaves the RFC's recursion can produce (its start aligned to a
    /// power of two at least its length), left to right, largest first.
    public static func subtrees(covering range: Range<Int64>) -> [Subtree] {
        var result: [Subtree] = []
        var start = range.lowerBound
        var remaining = range.count
        while remaining > 0 {
            let level = 63 - Int64(remaining).leadingZeroBitCount
            result.append(Subtree(level: level, index: start >> level))
            start += Int64(1) << level
            remaining -= 1 << level
        }
        return result
    }

    /// MTH of a range from the hashes of its perfect subtrees: the right-most pair is joined first, as the
    /// RFC's split at the largest power of two implies.
    public static func hash<E: Error>(
        of range: Range<Int64>, subtree: (Subtree) throws(E) -> [UInt8]
    ) throws(E) -> [UInt8] {
        let parts = subtrees(covering: range)
        guard var result = try parts.last.map(subtree) else { return emptyRoot }
        for part in parts.dropLast().reversed() { result = nodeHash(try subtree(part), result) }
        return result
    }

    /// The leaf ranges whose hashes form PATH(m, D[n]) (RFC 9162 section 2.1.3.1), in proof order.
    public static func inclusionProofRanges(index m: Int64, size n: Int64) -> [Range<Int64>] {
        precondition(0 <= m && m < n)
        var ranges: [Range<Int64>] = []
        var (low, high) = (Int64(0), n)
        while high - low > 1 {
            let k = largestPowerOfTwo(below: high - low)
            if m < low + k {
                ranges.append((low + k)..<high)
                high = low + k
            } else {
                ranges.append(low..<(low + k))
                low += k
            }
        }
        return ranges.reversed()
    }

    /// The leaf ranges whose hashes form PROOF(m, D[n]) (RFC 9162 section 2.1.4.1), in proof order.
    public static func consistencyProofRanges(from m: Int64, to n: Int64) -> [Range<Int64>] {
        precondition(0 < m && m <= n)
        var ranges: [Range<Int64>] = []
        var (low, high) = (Int64(0), n)
        var completeSubtree = true
        while m != high {
            let k = largestPowerOfTwo(below: high - low)
            if m - low <= k {
                ranges.append((low + k)..<high)
                high = low + k
            } else {
                ranges.append(low..<(low + k))
                low += k
                completeSubtree = false
            }
        }
        if !completeSubtree { ranges.append(low..<high) }
        return ranges.reversed()
    }

    /// Every perfect subtree a set of ranges needs, to fetch them in one query.
    public static func subtrees(for ranges: [Range<Int64>]) -> Set<Subtree> {
        Set(ranges.flatMap { subtrees(covering: $0) })
    }

    /// RFC 9162 section 2.1.3.2: does `proof` show the leaf at `index` in the tree of `size` with `root`?
    public static func verifyInclusion(
        leafHash: [UInt8], index: Int64, size: Int64, proof: [[UInt8]], root: [UInt8]
    ) -> Bool {
        guard 0 <= index, index < size else { return false }
        var fn = index
        var sn = size - 1
        var r = leafHash
        for p in proof {
            if sn == 0 { return false }
            if fn & 1 == 1 || fn == sn {
                r = nodeHash(p, r)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 {
                        fn >>= 1
                        sn >>= 1
                    }
                }
            } else {
                r = nodeHash(r, p)
            }
            fn >>= 1
            sn >>= 1
        }
        return sn == 0 && r == root
    }

    /// RFC 9162 section 2.1.4.2: is the tree of `secondSize` with `secondRoot` an append-only extension of the
    /// tree of `firstSize` with `firstRoot`? Equal sizes need an empty proof and equal roots.
    public static func verifyConsistency(
        firstSize: Int64, secondSize: Int64, firstRoot: [UInt8], secondRoot: [UInt8], proof: [[UInt8]]
    ) -> Bool {
        guard 0 < firstSize, firstSize <= secondSize else { return false }
        if firstSize == secondSize { return proof.isEmpty && firstRoot == secondRoot }
        guard !proof.isEmpty else { return false }
        var path = proof
        if firstSize & (firstSize - 1) == 0 { path.insert(firstRoot, at: 0) }
        var fn = firstSize - 1
        var sn = secondSize - 1
        while fn & 1 == 1 {
            fn >>= 1
            sn >>= 1
        }
        var fr = path[0]
        var sr = path[0]
        for c in path.dropFirst() {
            if sn == 0 { return false }
            if fn & 1 == 1 || fn == sn {
                fr = nodeHash(c, fr)
                sr = nodeHash(c, sr)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 {
                        fn >>= 1
                        sn >>= 1
                    }
                }
            } else {
                sr = nodeHash(sr, c)
            }
            fn >>= 1
            sn >>= 1
        }
        return fr == firstRoot && sr == secondRoot && sn == 0
    }
}

/// The right edge of a tree of `size` leaves: one perfect subtree hash per set bit of `size`, largest first.
/// Appending a leaf yields every perfect subtree it completes, which is what the sequencer stores.
public struct MerkleFrontier: Sendable, Equatable {
    public private(set) var size: Int64
    public private(set) var hashes: [[UInt8]]

    public static let empty = MerkleFrontier(uncheckedSize: 0, hashes: [])

    private init(uncheckedSize size: Int64, hashes: [[UInt8]]) {
        self.size = size
        self.hashes = hashes
    }

    /// The stored subtrees that make up the frontier of a tree of `size`, in the order `init(size:hashes:)` takes.
    public static func subtrees(forSize size: Int64) -> [Subtree] {
        MerkleTree.subtrees(covering: 0..<size)
    }

    public init?(size: Int64, hashes: [[UInt8]]) {
        guard size >= 0, hashes.count == size.nonzeroBitCount, hashes.allSatisfy({ $0.count == 32 }) else {
            return nil
        }
        self.init(uncheckedSize: size, hashes: hashes)
    }

    /// Adds the next leaf; returns the perfect subtrees it completes, the leaf itself first.
    @discardableResult
    public mutating func append(_ leafHash: [UInt8]) -> [(Subtree, [UInt8])] {
        let index = size
        var completed = [(Subtree(level: 0, index: index), leafHash)]
        var hash = leafHash
        var level = 0
        while (index >> level) & 1 == 1 {
            hash = MerkleTree.nodeHash(hashes.removeLast(), hash)
            level += 1
            completed.append((Subtree(level: level, index: index >> level), hash))
        }
        hashes.append(hash)
        size += 1
        return completed
    }

    public var root: [UInt8] {
        guard var result = hashes.last else { return MerkleTree.emptyRoot }
        for hash in hashes.dropLast().reversed() { result = MerkleTree.nodeHash(hash, result) }
        return result
    }
}
