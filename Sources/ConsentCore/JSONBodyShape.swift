/// The nesting limit a JSON request body must meet before it is decoded. The contract's bodies are at most four
/// levels deep, so anything far deeper is an attack on the parser rather than a request; the decoder's own limit
/// (512) would answer it only as "not valid JSON", after the work.
///
/// One pass over the bytes with a counter: no recursion, so no input can exhaust the call stack. It does not
/// validate JSON (the decoder does that next); on malformed input it may count wrongly, never crash.
public enum JSONBodyShape {
    public static let defaultMaxDepth = 32

    /// True when arrays and objects in `body` nest deeper than `maxDepth`. Brackets inside strings do not count.
    public static func nestsTooDeep(_ body: some Sequence<UInt8>, maxDepth: Int = defaultMaxDepth) -> Bool {
        // A generic sequence from another module is walked through unspecialised witnesses, which cost a 10,000-subject
        // batch 14% of its time; contiguous bytes (a request's ByteBuffer view) are scanned as raw memory instead.
        if let answer = body.withContiguousStorageIfAvailable({ nestsTooDeep(UnsafeRawBufferPointer($0), maxDepth) }) {
            return answer
        }
        return Array(body).withUnsafeBytes { nestsTooDeep($0, maxDepth) }
    }

    private static func nestsTooDeep(_ body: UnsafeRawBufferPointer, _ maxDepth: Int) -> Bool {
        var depth = 0
        var inString = false
        var escaped = false
        for byte in body {
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""):
                inString = true
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                if depth > maxDepth { return true }
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
            default:
                break
            }
        }
        return false
    }
}
