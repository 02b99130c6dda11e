/// One opt-out rule, written as the words of a message in order, so that a reviewer reads it as a sentence:
///
/// | piece          | matches                                                                                  |
/// | -------------- | ---------------------------------------------------------------------------------------- |
/// | `stop`         | that word (folded: lower case, no accents)                                               |
/// | `disiscriv*`   | a word that begins so                                                                    |
/// | `me?`          | the piece, or nothing                                                                    |
/// | `a|b|do_not`   | one of these; `_` joins the words of a longer one                                        |
/// | `@messages`    | one entry of the language's vocabulary under that name (entries use the same syntax)     |
/// | `~3`           | up to three words of the same sentence, none of them a negation or a gap blocker         |
/// | `^`, `$`       | the start or end of a clause (a sentence, or a part of one between commas)               |
///
/// A gap keeps rules short ("@stop ~3 @messages" reads "stop sending me all these promotions") while its blockers
/// keep them honest: "I don't want to *stop* receiving updates" has no gap from "don't want" to "updates".
struct OptOutPattern: Sendable, CustomStringConvertible {
    /// One word of a pattern or vocabulary entry.
    enum Word: Sendable, Hashable {
        case exact(String)
        case prefix(String)

        init(_ text: Substring) {
            self = text.hasSuffix("*") ? .prefix(String(text.dropLast())) : .exact(String(text))
        }

        func matches(_ word: String) -> Bool {
            switch self {
            case .exact(let exact): word == exact
            case .prefix(let prefix): word.hasPrefix(prefix) && word.count > prefix.count
            }
        }
    }

    /// Words to look a message's word up in: exact ones by hash, prefixes one by one.
    struct WordSet: Sendable {
        private let exact: Set<String>
        private let prefixes: [Word]

        init(_ words: [Word]) {
            var exact: Set<String> = []
            var prefixes: [Word] = []
            for word in words {
                if case .exact(let text) = word { exact.insert(text) } else { prefixes.append(word) }
            }
            self.exact = exact
            self.prefixes = prefixes
        }

        func contains(_ word: String) -> Bool {
            exact.contains(word) || prefixes.contains { $0.matches(word) }
        }
    }

    /// One of several word sequences, found by their first word: a vocabulary has dozens of entries and a rule is
    /// tried at every word of every message.
    struct Choice: Sendable {
        let optional: Bool
        private let byFirstWord: [String: [[Word]]]
        private let byPrefix: [[Word]]

        init(_ sequences: [[Word]], optional: Bool) {
            var byFirstWord: [String: [[Word]]] = [:]
            var byPrefix: [[Word]] = []
            for sequence in sequences {
                if case .exact(let first) = sequence.first {
                    byFirstWord[first, default: []].append(sequence)
                } else {
                    byPrefix.append(sequence)
                }
            }
            self.optional = optional
            self.byFirstWord = byFirstWord
            self.byPrefix = byPrefix
        }

        /// Calls `body` with the length of each sequence that the words at `position` begin with, until it
        /// returns true; true if it did.
        func anyMatchLength(in words: [String], at position: Int, _ body: (Int) -> Bool) -> Bool {
            guard position < words.count else { return false }
            func matches(_ sequence: [Word]) -> Bool {
                guard position + sequence.count <= words.count else { return false }
                for (offset, word) in sequence.enumerated() where !word.matches(words[position + offset]) {
                    return false
                }
                return true
            }
            for sequence in byFirstWord[words[position]] ?? [] where matches(sequence) {
                if body(sequence.count) { return true }
            }
            for sequence in byPrefix where matches(sequence) {
                if body(sequence.count) { return true }
            }
            return false
        }
    }

    enum Piece: Sendable {
        case words(Choice)
        case gap(Int)
        case clauseStart
        case clauseEnd
    }

    enum Invalid: Error, Equatable {
        case unknownVocabulary(String, pattern: String)
        case badGap(String, pattern: String)
        case empty(pattern: String)
    }

    let description: String
    let pieces: [Piece]

    init(_ source: String, vocabulary: [String: [String]]) throws(Invalid) {
        var pieces: [Piece] = []
        for token in source.split(separator: " ") {
            switch token {
            case "^": pieces.append(.clauseStart)
            case "$": pieces.append(.clauseEnd)
            case _ where token.hasPrefix("~"):
                guard let limit = Int(token.dropFirst()), limit > 0 else {
                    throw .badGap(String(token), pattern: source)
                }
                pieces.append(.gap(limit))
            default:
                let optional = token.hasSuffix("?")
                let body = optional ? token.dropLast() : token
                var alternatives: [Substring] = []
                for alternative in body.split(separator: "|") {
                    alternatives += try Self.expand(alternative, vocabulary: vocabulary, pattern: source)
                }
                let sequences = alternatives.map { $0.split(separator: "_").map(Word.init) }.filter { !$0.isEmpty }
                guard !sequences.isEmpty else { throw .empty(pattern: source) }
                pieces.append(.words(Choice(sequences, optional: optional)))
            }
        }
        guard !pieces.isEmpty else { throw .empty(pattern: source) }
        self.description = source
        self.pieces = pieces
    }

    /// An alternative with its `@name` references replaced by their entries, which may refer to other entries
    /// ("@list" includes "@messages": you can be taken off the newsletter as off the list).
    private static func expand(
        _ alternative: Substring, vocabulary: [String: [String]], pattern: String, depth: Int = 0
    ) throws(Invalid) -> [Substring] {
        guard alternative.hasPrefix("@") else { return [alternative] }
        let name = String(alternative.dropFirst())
        guard depth < 4, let entries = vocabulary[name] else { throw .unknownVocabulary(name, pattern: pattern) }
        var expanded: [Substring] = []
        for entry in entries {
            expanded += try expand(Substring(entry), vocabulary: vocabulary, pattern: pattern, depth: depth + 1)
        }
        return expanded
    }

    /// Every end (exclusive) of a match that begins at `start`.
    func matchEnds(in words: [String], from start: Int, gapBlockers: WordSet) -> Set<Int> {
        var ends: Set<Int> = []
        _ = firstEnd(in: words, from: start, gapBlockers: gapBlockers) { end in
            ends.insert(end)
            return false
        }
        return ends
    }

    /// The first end (exclusive) of a match that begins at `start` and that `accept` takes, trying no further.
    func firstEnd(
        in words: [String], from start: Int, gapBlockers: WordSet, where accept: (Int) -> Bool
    ) -> Int? {
        var found: Int?
        _ = extend(piece: 0, at: start, in: words, gapBlockers: gapBlockers) { end in
            guard accept(end) else { return false }
            found = end
            return true
        }
        return found
    }

    /// Tries the pieces from `index` on at `position`; true once `done` said so for an end.
    private func extend(
        piece index: Int, at position: Int, in words: [String], gapBlockers: WordSet, done: (Int) -> Bool
    ) -> Bool {
        guard index < pieces.count else { return done(position) }
        let next = index + 1
        switch pieces[index] {
        case .clauseStart:
            guard position == 0 || OptOutText.isBoundary(words[position - 1]) else { return false }
            return extend(piece: next, at: position, in: words, gapBlockers: gapBlockers, done: done)
        case .clauseEnd:
            guard position == words.count || OptOutText.isBoundary(words[position]) else { return false }
            return extend(piece: next, at: position, in: words, gapBlockers: gapBlockers, done: done)
        case .gap(let limit):
            var position = position
            for _ in 0...limit {
                if extend(piece: next, at: position, in: words, gapBlockers: gapBlockers, done: done) { return true }
                guard position < words.count else { return false }
                let word = words[position]
                // A pause may be stepped over; a sentence end, a negation or a blocker may not.
                if word == OptOutText.sentenceEnd || gapBlockers.contains(word) { return false }
                position += 1
            }
            return false
        case .words(let choice):
            if choice.optional, extend(piece: next, at: position, in: words, gapBlockers: gapBlockers, done: done) {
                return true
            }
            return choice.anyMatchLength(in: words, at: position) { length in
                extend(piece: next, at: position + length, in: words, gapBlockers: gapBlockers, done: done)
            }
        }
    }
}
