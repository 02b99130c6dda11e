/// Splits a SQL script into statements at top-level semicolons.
///
/// postgres-nio speaks only the extended query protocol, which takes one statement at a time, while migration
/// files hold many. Semicolons inside quoted strings, quoted identifiers, dollar-quoted bodies (`$$ … $$`,
/// `$tag$ … $tag$`) and comments do not end a statement. Statements that hold only comments are dropped.
public enum SQLScript {
    public static func statements(_ script: String) -> [String] {
        let chars = Array(script.unicodeScalars)
        var statements: [String] = []
        var current = String.UnicodeScalarView()
        var hasCode = false
        var index = 0

        func flush() {
            let text = String(current).trimmingWhitespace()
            if hasCode, !text.isEmpty { statements.append(text) }
            current = String.UnicodeScalarView()
            hasCode = false
        }
        func take(until end: Int) {
            current.append(contentsOf: chars[index..<min(end, chars.count)])
            index = min(end, chars.count)
        }

        while index < chars.count {
            let c = chars[index]
            let next: Unicode.Scalar? = index + 1 < chars.count ? chars[index + 1] : nil
            switch c {
            case "-" where next == "-":
                let end = chars[index...].firstIndex(of: "\n") ?? chars.count
                take(until: end)
            case "/" where next == "*":
                take(until: blockCommentEnd(chars, from: index))
            case "'", "\"":
                hasCode = true
                take(until: quotedEnd(chars, from: index, quote: c))
            case "$":
                hasCode = true
                if let tag = dollarTag(chars, at: index) {
                    take(until: dollarBodyEnd(chars, from: index + tag.count, tag: tag))
                } else {
                    take(until: index + 1)
                }
            case ";":
                flush()
                index += 1
            default:
                if !c.properties.isWhitespace { hasCode = true }
                take(until: index + 1)
            }
        }
        flush()
        return statements
    }

    /// Nested block comments, as PostgreSQL allows them.
    static func blockCommentEnd(_ chars: [Unicode.Scalar], from start: Int) -> Int {
        var depth = 0
        var i = start
        while i < chars.count {
            if chars[i] == "/", i + 1 < chars.count, chars[i + 1] == "*" {
                depth += 1
                i += 2
            } else if chars[i] == "*", i + 1 < chars.count, chars[i + 1] == "/" {
                depth -= 1
                i += 2
                if depth == 0 { return i }
            } else {
                i += 1
            }
        }
        return chars.count
    }

    /// A doubled quote is an escaped quote, not the end.
    static func quotedEnd(_ chars: [Unicode.Scalar], from start: Int, quote: Unicode.Scalar) -> Int {
        var i = start + 1
        while i < chars.count {
            if chars[i] == quote {
                if i + 1 < chars.count, chars[i + 1] == quote {
                    i += 2
                    continue
                }
                return i + 1
            }
            i += 1
        }
        return chars.count
    }

    /// `$$` or `$tag$` where tag is an identifier; `$1` (a parameter) is not a tag.
    static func dollarTag(_ chars: [Unicode.Scalar], at start: Int) -> [Unicode.Scalar]? {
        var i = start + 1
        while i < chars.count, chars[i] != "$" {
            let c = chars[i]
            let isIdentifier = c == "_" || c.properties.isAlphabetic || (i > start + 1 && ("0"..."9").contains(c))
            guard isIdentifier else { return nil }
            i += 1
        }
        guard i < chars.count else { return nil }
        return Array(chars[start...i])
    }

    static func dollarBodyEnd(_ chars: [Unicode.Scalar], from start: Int, tag: [Unicode.Scalar]) -> Int {
        var i = start
        while i + tag.count <= chars.count {
            if chars[i] == "$", Array(chars[i..<(i + tag.count)]) == tag { return i + tag.count }
            i += 1
        }
        return chars.count
    }
}

extension String {
    func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[first...last])
    }
}
