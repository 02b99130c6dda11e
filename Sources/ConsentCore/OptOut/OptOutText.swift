import Foundation

/// A message as the opt-out rules read it: folded words (lower case, no accents, "ß" as "ss", chat spellings
/// written out), with the places where a sentence or clause ends kept as tokens of their own.
struct OptOutText: Sendable, Equatable {
    /// Ends a sentence (". ! ? ; :", a line break): no rule reaches across it.
    static let sentenceEnd = "."
    /// A comma: a rule's gap may step over it (German puts one before every "zu" clause: "hört auf, mir zu
    /// schreiben"), but a negation on its far side belongs to another clause ("No, stop sending me offers").
    static let pause = ","

    let words: [String]

    init(_ message: String) {
        var words: [String] = []
        // FoldedText collapses line breaks into spaces, and a line break ends a chat sentence as a full stop does.
        for line in message.split(whereSeparator: \.isNewline) {
            words.append(contentsOf: Self.words(in: FoldedText(String(line)).folded))
            words.append(Self.sentenceEnd)
        }
        self.words = Self.tidyBoundaries(words)
    }

    static func isBoundary(_ word: String) -> Bool { word == sentenceEnd || word == pause }

    private static func words(in folded: String) -> [String] {
        let characters = Array(folded)
        var words: [String] = []
        var word = ""
        func endWord() {
            // The keywords' folding, so that "stooop" is "stop" here as it is for `ReplyKeywords`.
            if !word.isEmpty { words.append(contentsOf: normalised(ReplyKeywords.foldKeyword(word))) }
            word = ""
        }
        for (index, character) in characters.enumerated() {
            if character.isLetter || character.isNumber {
                word.append(character)
                continue
            }
            switch character {
            case "'":
                // English contractions stay one word ("don't" is "dont", so a negation is one token); elsewhere
                // the apostrophe is an elision and separates ("m'envoyer", "l'invio").
                if !word.isEmpty, isContractionSuffix(characters, after: index) { continue }
                endWord()
            case ".", "!", "?", ";", ":", "\u{2026}", "\u{00A1}", "\u{00BF}":
                endWord()
                words.append(sentenceEnd)
            case ",":
                endWord()
                words.append(pause)
            case "+":
                // Italian chat writes "più" as "+" ("non mandatemi + messaggi").
                endWord()
                words.append("piu")
            default:
                endWord()
            }
        }
        endWord()
        return words
    }

    private static let contractionSuffixes: Set<String> = ["t", "s", "re", "ll", "ve", "d", "m"]

    private static func isContractionSuffix(_ characters: [Character], after index: Int) -> Bool {
        var suffix = ""
        var next = index + 1
        while next < characters.count, characters[next].isLetter {
            suffix.append(characters[next])
            next += 1
        }
        return contractionSuffixes.contains(suffix)
    }

    /// Chat spellings that mean one thing in all six languages, written out so the rule tables need only the
    /// words themselves. Spellings that collide across languages ("msg", "n") stay in the tables of the language
    /// that uses them.
    private static let chatSpellings: [String: [String]] = [
        "pls": ["please"], "plz": ["please"], "plis": ["please"], "pliz": ["please"], "plse": ["please"],
        "u": ["you"], "ur": ["your"], "dnt": ["dont"], "anymore": ["any", "more"], "nomore": ["no", "more"],
        "nn": ["non"], "xfavore": ["per", "favore"], "perfavore": ["per", "favore"], "x": ["per"],
        "xke": ["perche"], "xche": ["perche"],
        "nix": ["nichts"],
        "svp": ["s", "il", "vous", "plait"], "stp": ["s", "il", "te", "plait"],
        "porfa": ["por", "favor"], "porfavor": ["por", "favor"], "xfa": ["por", "favor"], "xfavor": ["por", "favor"],
        "pfv": ["por", "favor"], "pfvr": ["por", "favor"], "msj": ["mensajes"], "msjs": ["mensajes"],
        "vc": ["voce"], "vcs": ["voces"], "q": ["que"], "naum": ["nao"],
    ]

    private static func normalised(_ word: String) -> [String] { chatSpellings[word] ?? [word] }

    /// One boundary between words, none at either end; a sentence end wins over a pause beside it.
    private static func tidyBoundaries(_ words: [String]) -> [String] {
        var out: [String] = []
        for word in words {
            guard isBoundary(word) else {
                out.append(word)
                continue
            }
            guard let last = out.last else { continue }
            if isBoundary(last) {
                if word == sentenceEnd { out[out.count - 1] = sentenceEnd }
            } else {
                out.append(word)
            }
        }
        while let last = out.last, isBoundary(last) { out.removeLast() }
        return out
    }
}
