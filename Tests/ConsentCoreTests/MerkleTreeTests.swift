import ConsentCore
import Foundation
import Testing

/// The RFC 9162 definitions, written straight from sections 2.1.1, 2.1.3.1 and 2.1.4.1 over whole leaf lists,
/// as the reference the stored-subtree implementation must agree with.
enum RFC9162Reference {
    static func mth(_ d: ArraySlice<[UInt8]>) -> [UInt8] { MerkleTree.root(d) }

    static func path(_ m: Int, _ d: ArraySlice<[UInt8]>) -> [[UInt8]] {
        let n = d.count
        guard n > 1 else { return [] }
        let k = Int(MerkleTree.largestPowerOfTwo(below: Int64(n)))
        let s = d.startIndex
        if m < k { return path(m, d[s..<(s + k)]) + [mth(d[(s + k)...])] }
        return path(m - k, d[(s + k)...]) + [mth(d[s..<(s + k)])]
    }

    static func proof(_ m: Int, _ d: ArraySlice<[UInt8]>) -> [[UInt8]] { subproof(m, d, true) }

    static func subproof(_ m: Int, _ d: ArraySlice<[UInt8]>, _ b: Bool) -> [[UInt8]] {
        let n = d.count
        if m == n { return b ? [] : [mth(d)] }
        let k = Int(MerkleTree.largestPowerOfTwo(below: Int64(n)))
        let s = d.startIndex
        if m <= k { return subproof(m, d[s..<(s + k)], b) + [mth(d[(s + k)...])] }
        return subproof(m - k, d[(s + k)...], false) + [mth(d[s..<(s + k)])]
    }
}

/// A tree built leaf by leaf through the frontier, keeping every completed subtree as the store does.
struct StoredTree {
    var frontier = MerkleFrontier.empty
    var nodes: [Subtree: [UInt8]] = [:]

    init(_ leaves: [[UInt8]]) {
        for leaf in leaves {
            for (subtree, hash) in frontier.append(leaf) { nodes[subtree] = hash }
        }
    }

    struct Missing: Error {}
    func hash(_ range: Range<Int64>) throws -> [UInt8] {
        try MerkleTree.hash(of: range) { (subtree) throws(Missing) in
            guard let hash = nodes[subtree] else { throw Missing() }
            return hash
        }
    }
    func inclusion(_ m: Int64, _ n: Int64) throws -> [[UInt8]] {
        try MerkleTree.inclusionProofRanges(index: m, size: n).map(hash)
    }
    func consistency(_ m: Int64, _ n: Int64) throws -> [[UInt8]] {
        try MerkleTree.consistencyProofRanges(from: m, to: n).map(hash)
    }
}

func leaves(_ count: Int) -> [[UInt8]] {
    (0..<count).map { MerkleTree.leafHash(Array("leaf \($0)".utf8)) }
}

@Suite struct MerkleTreeTests {
    /// The eight leaves of the RFC 6962 reference implementation's tests (merkle_tree_test.cc).
    static let rfc6962Leaves: [[UInt8]] = [
        "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f",
    ].map { [UInt8](hex: $0)! }

    @Test func theEmptyTreeHashesTheEmptyString() {
        #expect(MerkleTree.emptyRoot.hexString == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(MerkleFrontier.empty.root == MerkleTree.emptyRoot)
    }

    @Test func theRFC6962EightLeafVectorHasItsKnownRoot() throws {
        let hashes = Self.rfc6962Leaves.map(MerkleTree.leafHash)
        let expected = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
        #expect(MerkleTree.root(hashes[...]).hexString == expected)
        #expect(StoredTree(hashes).frontier.root.hexString == expected)
        // The reference implementation's intermediate roots for the first leaves.
        #expect(
            MerkleTree.root(hashes[..<1]).hexString
                == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
        #expect(
            MerkleTree.root(hashes[..<2]).hexString
                == "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")
        #expect(
            MerkleTree.root(hashes[..<3]).hexString
                == "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77")
    }

    @Test func theFrontierGivesTheDefinitionsRootAtEverySize() {
        let all = leaves(300)
        var frontier = MerkleFrontier.empty
        for size in 1...all.count {
            frontier.append(all[size - 1])
            #expect(frontier.root == MerkleTree.root(all[..<size]), "size \(size)")
            #expect(frontier.size == Int64(size))
        }
    }

    @Test func aFrontierRebuiltFromStoredSubtreesCarriesOn() throws {
        let all = leaves(100)
        let stored = StoredTree(all)
        for size in 0...99 {
            let subtrees = MerkleFrontier.subtrees(forSize: Int64(size))
            let hashes = try subtrees.map { try #require(stored.nodes[$0]) }
            var frontier = try #require(MerkleFrontier(size: Int64(size), hashes: hashes))
            frontier.append(all[size])
            #expect(frontier.root == MerkleTree.root(all[...size]))
        }
        #expect(MerkleFrontier(size: 3, hashes: [all[0]]) == nil)
    }

    @Test func inclusionProofsMatchTheDefinitionForEverySizeUpTo70() throws {
        let all = leaves(70)
        let stored = StoredTree(all)
        for n in 1...70 {
            let root = MerkleTree.root(all[..<n])
            for m in 0..<n {
                let proof = try stored.inclusion(Int64(m), Int64(n))
                #expect(proof == RFC9162Reference.path(m, all[..<n]), "m \(m) n \(n)")
                #expect(
                    MerkleTree.verifyInclusion(
                        leafHash: all[m], index: Int64(m), size: Int64(n), proof: proof, root: root))
            }
        }
    }

    @Test func consistencyProofsMatchTheDefinitionForEverySizeUpTo70() throws {
        let all = leaves(70)
        let stored = StoredTree(all)
        for n in 1...70 {
            let root = MerkleTree.root(all[..<n])
            for m in 1...n {
                let proof = try stored.consistency(Int64(m), Int64(n))
                #expect(proof == RFC9162Reference.proof(m, all[..<n]), "m \(m) n \(n)")
                #expect(
                    MerkleTree.verifyConsistency(
                        firstSize: Int64(m), secondSize: Int64(n), firstRoot: MerkleTree.root(all[..<m]),
                        secondRoot: root,
                        proof: proof))
            }
        }
    }

    @Test func proofsHoldForRandomLargerSizes() throws {
        var generator = SystemRandomNumberGenerator()
        let all = leaves(5000)
        let stored = StoredTree(all)
        for _ in 0..<40 {
            let n = Int.random(in: 71...5000, using: &generator)
            let m = Int.random(in: 0..<n, using: &generator)
            let root = MerkleTree.root(all[..<n])
            let inclusion = try stored.inclusion(Int64(m), Int64(n))
            #expect(inclusion == RFC9162Reference.path(m, all[..<n]))
            #expect(
                MerkleTree.verifyInclusion(
                    leafHash: all[m], index: Int64(m), size: Int64(n), proof: inclusion, root: root))
            let first = m + 1
            let consistency = try stored.consistency(Int64(first), Int64(n))
            #expect(consistency == RFC9162Reference.proof(first, all[..<n]))
            #expect(
                MerkleTree.verifyConsistency(
                    firstSize: Int64(first), secondSize: Int64(n), firstRoot: MerkleTree.root(all[..<first]),
                    secondRoot: root,
                    proof: consistency))
        }
    }

    @Test func alteredProofsAreRejected() throws {
        let all = leaves(37)
        let stored = StoredTree(all)
        let root = MerkleTree.root(all[...])
        let proof = try stored.inclusion(11, 37)
        for position in proof.indices {
            var bad = proof
            bad[position][0] ^= 1
            #expect(!MerkleTree.verifyInclusion(leafHash: all[11], index: 11, size: 37, proof: bad, root: root))
        }
        #expect(!MerkleTree.verifyInclusion(leafHash: all[12], index: 11, size: 37, proof: proof, root: root))
        #expect(!MerkleTree.verifyInclusion(leafHash: all[11], index: 12, size: 37, proof: proof, root: root))
        // A size with another shape; sizes of the same shape are bound by the checkpoint that signs size and root.
        #expect(!MerkleTree.verifyInclusion(leafHash: all[11], index: 11, size: 20, proof: proof, root: root))
        #expect(
            !MerkleTree.verifyInclusion(leafHash: all[11], index: 11, size: 37, proof: proof.dropLast(), root: root))
        #expect(!MerkleTree.verifyInclusion(leafHash: all[11], index: 37, size: 37, proof: proof, root: root))

        let oldRoot = MerkleTree.root(all[..<20])
        let consistency = try stored.consistency(20, 37)
        for position in consistency.indices {
            var bad = consistency
            bad[position][31] ^= 0x80
            #expect(
                !MerkleTree.verifyConsistency(
                    firstSize: 20, secondSize: 37, firstRoot: oldRoot, secondRoot: root, proof: bad))
        }
        var forked = all
        forked[3] = MerkleTree.leafHash(Array("rewritten".utf8))
        #expect(
            !MerkleTree.verifyConsistency(
                firstSize: 20, secondSize: 37, firstRoot: MerkleTree.root(forked[..<20]), secondRoot: root,
                proof: consistency))
        #expect(
            !MerkleTree.verifyConsistency(
                firstSize: 20, secondSize: 37, firstRoot: oldRoot, secondRoot: root, proof: []))
        #expect(
            MerkleTree.verifyConsistency(firstSize: 37, secondSize: 37, firstRoot: root, secondRoot: root, proof: []))
        #expect(
            !MerkleTree.verifyConsistency(
                firstSize: 37, secondSize: 37, firstRoot: oldRoot, secondRoot: root, proof: []))
        #expect(
            !MerkleTree.verifyConsistency(
                firstSize: 0, secondSize: 37, firstRoot: oldRoot, secondRoot: root, proof: consistency))
    }

    @Test func rangesDecomposeIntoAlignedPerfectSubtrees() {
        #expect(
            MerkleTree.subtrees(covering: 0..<13) == [
                Subtree(level: 3, index: 0), Subtree(level: 2, index: 2), Subtree(level: 0, index: 12),
            ])
        #expect(MerkleTree.subtrees(covering: 8..<11) == [Subtree(level: 1, index: 4), Subtree(level: 0, index: 10)])
        #expect(Subtree(level: 2, index: 3).leaves == 12..<16)
        #expect(MerkleTree.subtrees(covering: 5..<5).isEmpty)
    }
}
