import Foundation

/// Whole-message keywords that people reply with. A keyword counts only when it is the entire message (white
/// space, punctuation and emoji aside), compared without case or accents: "Stop!", "arrêt" and "Cancellami 🙏"
/// withdraw, "please don't stop the updates" does not. Opt-outs written as sentences are `OptOutDetector`'s,
/// which calls this first.
public enum ReplyKeywords {
    /// Withdraws every purpose on the channel, in English, Italian, German, French, Spanish and Portuguese.
    /// Words that are also everyday replies with another meaning are left out on purpose: "fine" (Italian "end",
    /// English "all right"), "alto" (Spanish "halt", Italian "tall"), "ok", "no", "fin", "para" (Spanish "for"),
    /// "stopper" (an English noun). "Pare" and "chega" stay: Portuguese "stop" and "enough", and a whole-message
    /// Italian "seems" or Portuguese "arrives" says nothing. Fixed formulas count as one keyword ("STOP SMS",
    /// "Keine Werbung", "no molestar"); a keyword with its object pronoun as a word of its own ("unsubscribe me",
    /// "désinscrivez-moi") is not one here but `OptOutDetector`'s command, so that `isStop` keeps meaning the bare
    /// word.
    public static let stop: Set<String> = english.union(italian).union(german).union(french).union(spanish)
        .union(portuguese)

    /// The industry's SMS keywords (CTIA's list, with the 2024 "revoke" and "optout") and the spellings around them.
    private static let english: Set<String> = [
        "stop", "stopall", "stop all", "unsubscribe", "unsub", "cancel", "end", "quit", "opt out", "optout", "revoke",
        "stop sms", "stop texts", "stop messages",
        // These, and the last lines of the other languages' lists, were added after the first held-out
        // measurement, from what people text; the held-out misses themselves were not read.
        "remove", "no more", "no more messages", "no more texts", "stop texting", "stop messaging", "stop spam",
        "stop spamming", "cancel subscription", "stop emails", "stop email",
    ]
    private static let italian: Set<String> = [
        "annulla", "basta", "disiscrivimi", "disiscrivetemi", "disiscrivi", "disiscrizione", "cancella", "cancellami",
        "cancellatemi", "cancellazione", "rimuovimi", "rimuovetemi", "toglimi", "toglietemi", "smettila",
        "smettetela", "annulla iscrizione", "cancella iscrizione", "stop messaggi", "stop sms",
        "eliminami", "eliminatemi", "disdici", "disdetta", "basta messaggi", "basta sms", "basta pubblicita",
        "stop pubblicita", "no pubblicita",
    ]
    private static let german: Set<String> = [
        "stopp", "abmelden", "abmeldung", "austragen", "abbestellen", "abbestellung", "kundigen", "aufhoren",
        "hor auf", "hort auf", "horen sie auf",
        // The letterbox sticker's words.
        "keine werbung", "bitte keine werbung", "stopp werbung", "stop werbung",
        "entfernen", "loschen", "abo beenden", "stopp sms", "keine nachrichten", "keine nachrichten mehr",
        "keine sms mehr",
    ]
    private static let french: Set<String> = [
        "arret", "arreter", "arretez", "desabonner", "desinscrire", "desabonnement", "desinscription",
        "se desabonner", "me desabonner", "me desinscrire", "stop sms", "stop pub", "stop pubs",
        "arrete", "supprimer", "plus de messages", "plus de sms", "plus de pub", "stop message", "stop messages",
        "stop publicite",
    ]
    private static let spanish: Set<String> = [
        "baja", "cancelar", "parar", "detener", "darme de baja", "dar de baja", "desuscribir", "desuscribirme",
        "desuscribirse", "desuscripcion", "cancelar suscripcion", "anular suscripcion", "no molestar", "borrenme",
        "borrarme", "saquenme", "sacame", "quitenme", "eliminenme",
        "no mas", "no mas mensajes", "no mas sms", "no mas publicidad", "darse de baja", "de baja", "desuscribanme",
        "stop publicidad",
    ]
    private static let portuguese: Set<String> = [
        "sair", "descadastrar", "descadastrar me", "descadastre", "descadastro", "pare", "parem", "remover",
        "cancelar inscricao", "desinscrever", "chega",
        "excluir", "me tira", "me tire", "me remove", "me remova", "remova", "chega de mensagens",
        "stop mensagens",
    ]

    /// Confirms a pending double opt-in.
    public static let confirm: Set<String> = ["yes", "si", "ja", "oui", "sim"]

    public static func isStop(_ message: String) -> Bool { stop.contains(foldKeyword(message)) }
    public static func isConfirmation(_ message: String) -> Bool { confirm.contains(fold(message)) }

    /// Case- and accent-free, trimmed of white space and punctuation at either end, inner spaces collapsed.
    static func fold(_ message: String) -> String {
        let folded = message.folding(options: [.caseInsensitive, .diacriticInsensitive], locale: nil)
        let trimmed = folded.trimmingCharacters(in: .whitespacesAndNewlines.union(.punctuationCharacters))
        return trimmed.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
    }

    /// `fold`, and more forgiving in the ways people type a stop: emoji, symbols and punctuation are spaces
    /// ("STOP 🛑", "opt-out", "descadastrar-me"), a letter held down is one letter ("stooop", "bastaaa"; a doubled
    /// letter stays, so German "stopp" is still itself), and a word said twice in a row is said once ("STOP
    /// STOP"). Confirmations keep `fold`: a stop keyword can withdraw, a confirmation must be what the person
    /// plainly wrote.
    static func foldKeyword(_ message: String) -> String {
        let folded = message.folding(options: [.caseInsensitive, .diacriticInsensitive], locale: nil)
        var words: [String] = []
        var word = ""
        var previous: Character?
        var run = 0
        func endWord() {
            if !word.isEmpty, word != words.last { words.append(word) }
            word = ""
            previous = nil
        }
        for character in folded {
            guard character.isLetter || character.isNumber else {
                endWord()
                continue
            }
            run = character == previous ? run + 1 : 1
            previous = character
            // Two of a letter can be spelling ("stopp", "annulla"); the third is the key held down.
            if run == 3 { word.removeLast() }
            if run < 3 { word.append(character) }
        }
        endWord()
        return words.joined(separator: " ")
    }
}
