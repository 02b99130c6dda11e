import Foundation
import Testing

@testable import ConsentCore

/// The opt-out detector on sentences written for these tests (the labelled corpus in Fixtures/opt-out is not
/// copied here). Every language has keywords, phrases, hard negatives and buttons.
@Suite struct OptOutDetectorTests {
    // MARK: Whole-message keywords

    @Test(arguments: [
        // en
        "STOP", "stop.", "Unsubscribe!", "opt-out", "Opt Out", "STOP ALL", "stooop", "Stop 🛑", "REVOKE", "unsub",
        // it
        "Cancellami", "cancellami 🙏", "DISISCRIVIMI", "disiscrivi", "Rimuovimi", "cancella", "basta!!",
        "Annulla iscrizione",
        // de
        "STOPP", "abbestellen", "Kündigen", "Abmelden.", "austragen", "Keine Werbung!", "aufhören",
        // fr
        "ARRÊT", "désabonnement", "Désinscription", "STOP SMS", "se désabonner", "Arrêter",
        // es
        "baja", "Detener", "darme de baja", "Desuscribirme", "cancelar suscripción", "No molestar",
        // pt
        "PARE", "sair", "Remover", "descadastrar-me", "Cancelar inscrição", "Chega!",
    ])
    func wholeMessageKeywords(message: String) {
        #expect(OptOutDetector.classify(message: message) == .keyword)
        #expect(ReplyKeywords.isStop(message))
    }

    @Test(arguments: [
        "unsubscribe me", "Remove me!", "opt me out", "Désinscrivez-moi", "retirez-moi", "melde mich ab",
        "Trag mich aus", "denme de baja", "me descadastra", "me tira daqui",
    ])
    func keywordsWithTheirObjectAreKeywordsButNotBareStopWords(message: String) {
        #expect(OptOutDetector.classify(message: message) == .keyword)
        #expect(!ReplyKeywords.isStop(message))
    }

    @Test(arguments: [
        "fine", "Fine!", "alto", "ok", "OK 👍", "no", "para", "fin", "stopper", "s t o p", "", "🛑", "yes",
        "Cancel my order", "cancella l'ordine", "Chega amanhã?",
    ])
    func ordinaryRepliesAreNotKeywords(message: String) {
        #expect(OptOutDetector.classify(message: message) != .keyword)
        #expect(!ReplyKeywords.isStop(message))
    }

    @Test func confirmationsAreUnchanged() {
        #expect(ReplyKeywords.isConfirmation("Sì"))
        #expect(ReplyKeywords.isConfirmation("Oui !"))
        #expect(!ReplyKeywords.isConfirmation("yes 👍 stop"))
        #expect(!ReplyKeywords.isConfirmation("ouii"))
    }

    // MARK: Phrases

    @Test(arguments: [
        "Please stop texting me", "stop sending me promotions!", "Can you stop messaging me please",
        "how can I stop getting these texts?", "No more messages please", "I'd like to unsubscribe",
        "Please unsubscribe me from these texts", "I want to opt out of the marketing", "Don't text me again",
        "Please remove me from your mailing list", "quit sending me ads", "pls stop msging me",
        "I do not wish to receive further marketing", "I've had enough of your messages",
        "Stop the marketing emails", "Unsubscribe. I never agreed to this", "unsubscribe pls", "stop it",
        "I don't want these offers anymore", "Remove my number from your list",
        "I don't want to keep getting these messages",
    ])
    func englishPhrases(message: String) {
        #expect(OptOutDetector.classify(message: message) == .phrase, "\(message)")
    }

    @Test(arguments: [
        "Non voglio più ricevere le vostre offerte", "smettetela di mandarmi messaggi",
        "per favore toglietemi dalla lista", "vorrei disiscrivermi dalla newsletter", "non mandatemi più messaggi",
        "basta con queste promozioni", "come faccio a disiscrivermi?", "Stop alle promozioni per favore",
        "non contattatemi più", "Potete smettere di inviarmi pubblicità?", "revoco il consenso",
        "Cancellatemi dalla vostra lista", "Non sono interessato, cancellatemi", "nn voglio + ricevere msg",
        "disiscrivimi subito", "Eliminate il mio numero dalla vostra rubrica",
        "Non voglio continuare a ricevere messaggi",
    ])
    func italianPhrases(message: String) {
        #expect(OptOutDetector.classify(message: message) == .phrase, "\(message)")
    }

    @Test(arguments: [
        "Bitte schicken Sie mir keine Werbung mehr", "Ich will keine Angebote mehr bekommen", "Abmelden bitte",
        "Wie melde ich mich ab?", "Hören Sie auf, mich zu kontaktieren", "Ich möchte mich vom Newsletter abmelden",
        "Keine Werbung mehr per WhatsApp bitte", "Lassen Sie mich in Ruhe", "Ich will das nicht mehr bekommen",
        "Schluss mit der Werbung!", "Stoppt die Nachrichten", "Ich widerrufe meine Einwilligung",
        "Bitte löschen Sie mich aus Ihrem Verteiler", "Newsletter abbestellen", "Schreibt mir nicht mehr",
    ])
    func germanPhrases(message: String) {
        #expect(OptOutDetector.classify(message: message) == .phrase, "\(message)")
    }

    @Test(arguments: [
        "Arrêtez de m'envoyer des SMS svp", "Je ne souhaite plus recevoir de messages promotionnels",
        "Désabonnez-moi svp", "Merci de me retirer de votre liste", "Stop pub svp",
        "je veux plus recevoir vos messages",
        "Plus de SMS svp", "Comment se désinscrire ?", "Laissez-moi tranquille avec vos pubs",
        "Cessez de me contacter", "Je ne veux plus être contacté", "arrête de m’écrire stp",
        "Ne m'écrivez plus", "Stop aux publicités",
    ])
    func frenchPhrases(message: String) {
        #expect(OptOutDetector.classify(message: message) == .phrase, "\(message)")
    }

    @Test(arguments: [
        "Dejen de mandarme promociones por favor", "No me escriban más", "Quiero darme de baja",
        "Denme de baja por favor", "Ya no quiero recibir sus ofertas", "Sáquenme de su lista de difusión",
        "No más mensajes, gracias", "¿Cómo me doy de baja?", "Basta de spam", "No me interesa, no me manden más",
        "Paren de enviarme ofertas", "por favor elimínenme de la lista", "deja de escribirme porfa",
        "Quiero cancelar mi suscripción a los mensajes", "no quiero seguir recibiendo sus mensajes",
    ])
    func spanishPhrases(message: String) {
        #expect(OptOutDetector.classify(message: message) == .phrase, "\(message)")
    }

    @Test(arguments: [
        "Parem de me enviar mensagens", "Não me mandem mais promoções", "Quero sair da lista",
        "me tira dessa lista por favor", "Não quero mais receber", "Como faço para me descadastrar?",
        "chega de propaganda", "não tenho interesse, parem de mandar mensagem", "Remover meu número, por favor",
        "n quero mais receber ofertas", "para de me encher com essas promoções", "me descadastra por favor",
        "não quero continuar recebendo mensagens",
    ])
    func portuguesePhrases(message: String) {
        #expect(OptOutDetector.classify(message: message) == .phrase, "\(message)")
    }

    // MARK: Hard negatives

    @Test(arguments: [
        // The issue's negatives.
        "non fermate la consegna", "stop by the shop tomorrow", "the stop button doesn't work", "cancel my order",
        "I don't want to stop receiving updates", "pare che il pacco sia in ritardo",
        // en
        "Stop the delivery, I'm not home", "I stopped receiving updates about my order, is everything ok?",
        "Please don't stop sending me offers, I love them", "Will the promotions stop after Christmas?",
        "Is there a bus stop near the store?", "I accidentally replied STOP, please keep sending me offers",
        "Don't cancel my order", "Can you stop by later to drop off the package?", "I don't want the messages to stop",
        "Cancel please, I booked the wrong day", "I don't want to miss your offers", "Stop! That's the wrong address",
        // it
        "Fermate l'ordine, ho sbagliato taglia", "non cancellate il mio ordine",
        "Ho cancellato per errore l'iscrizione, potete riattivarla?", "Basta un messaggio per confermare?",
        "non riesco a smettere di ridere con la vostra pubblicità", "Pare che le offerte siano finite",
        "Continuate pure a mandarmi le offerte", "Non voglio perdere le vostre promozioni",
        "basta rispondere a questo messaggio?", "Basta, grazie, il pacco è arrivato",
        // de
        "Bitte stoppen Sie die Lieferung", "Ich bekomme keine Nachrichten mehr von der Sendungsverfolgung",
        "Kann ich die Bestellung abbestellen?", "Bitte keine Lieferung vor 10 Uhr",
        "Ich habe aus Versehen Stopp geschrieben", "Ich will die Angebote nicht abbestellen",
        "Hör auf, mir das Paket vor die Tür zu legen", "Ich will keine Angebote verpassen",
        // fr
        "Arrêtez la livraison, je ne suis pas là", "J'ai plus de messages de suivi depuis hier",
        "Je veux plus de promos !", "Je me suis désabonné par erreur", "Le bus s'arrête devant chez moi",
        "Vous ne m'envoyez plus les factures ?", "N'arrêtez pas de m'envoyer vos offres",
        // es
        "Paren el pedido, me equivoqué", "Dejé un mensaje en el buzón", "No me llegan los mensajes de seguimiento",
        "Escribí baja sin querer, quiero seguir recibiendo las ofertas", "No quiero perderme ninguna oferta",
        "no dejen de mandarme ofertas!", "Pido la baja médica mañana", "deja un mensaje y te llamo",
        // pt
        "Pare o carro aqui no portão", "Não parem de mandar as ofertas", "Saí de casa agora, pode entregar na portaria",
        "quero continuar recebendo as promoções", "Chegou a mensagem, obrigado", "para de chover e eu busco",
        "não recebi a mensagem do código",
    ])
    func negativesAreNotOptOuts(message: String) {
        #expect(OptOutDetector.classify(message: message) == nil, "\(OptOutDetector.explain(message: message) ?? "")")
    }

    @Test func explainNamesTheRule() throws {
        let reason = try #require(OptOutDetector.explain(message: "please stop sending me these promotions"))
        #expect(reason.hasPrefix("en: "))
        #expect(OptOutDetector.explain(message: "stop by the shop tomorrow") == nil)
    }

    // MARK: Buttons

    @Test(arguments: [
        "Stop promotions", "🛑 Stop promotions", "STOP PROMOTIONS", "Unsubscribe", "No more offers",
        "Interrompi promozioni", "Disiscriviti", "Stop offerte", "Werbung stoppen", "Angebote stoppen",
        "Newsletter abbestellen", "Keine Werbung", "Arrêter les promotions", "Désabonnement", "Stop pub",
        "Detener promociones", "Darme de baja", "No quiero promociones", "Parar promoções", "Sair da lista",
        "Não quero receber ofertas", "Cancelar inscrição",
    ])
    func stopButtonsByTitle(title: String) {
        #expect(OptOutDetector.isStopButton(title: title, payload: nil, configuredPayloads: []))
    }

    @Test(arguments: [
        "Resume promotions", "Cancel", "Cancel order", "Stop delivery", "Track my order", "Remind me later",
        "Annulla ordine", "Più tardi", "Bestellung stornieren", "Lieferung stoppen", "Annuler la commande",
        "Plus tard", "Cancelar pedido", "Recordar más tarde", "Rastrear pedido", "Stop reminders", "See offers",
    ])
    func otherButtonsAreNotStops(title: String) {
        #expect(!OptOutDetector.isStopButton(title: title, payload: "SOMETHING", configuredPayloads: ["STOP_PROMO"]))
    }

    @Test func configuredPayloadStopsWhateverTheTitle() {
        let configured: Set<String> = ["STOP_PROMO", "optout-v2"]
        #expect(OptOutDetector.isStopButton(title: "Basta così", payload: "optout-v2", configuredPayloads: configured))
        #expect(OptOutDetector.isStopButton(title: nil, payload: "STOP_PROMO", configuredPayloads: configured))
        // A payload matches as configured, not folded: tenants choose them and compare them exactly.
        #expect(!OptOutDetector.isStopButton(title: nil, payload: "stop_promo", configuredPayloads: configured))
        #expect(!OptOutDetector.isStopButton(title: nil, payload: nil, configuredPayloads: configured))
        #expect(!OptOutDetector.isStopButton(title: "Track order", payload: "TRACK", configuredPayloads: configured))
    }

    // MARK: The engine

    @Test func everyRuleCompiles() {
        #expect(OptOutRulebook.shared.invalid.isEmpty, "\(OptOutRulebook.shared.invalid)")
        #expect(OptOutRulebook.shared.phrases.count > 50)
    }

    @Test func invalidPatternsAreReported() {
        #expect(throws: OptOutPattern.Invalid.unknownVocabulary("nothing", pattern: "stop @nothing")) {
            try OptOutPattern("stop @nothing", vocabulary: [:])
        }
        #expect(throws: OptOutPattern.Invalid.badGap("~x", pattern: "stop ~x messages")) {
            try OptOutPattern("stop ~x messages", vocabulary: [:])
        }
        #expect(throws: OptOutPattern.Invalid.empty(pattern: " ")) { try OptOutPattern(" ", vocabulary: [:]) }
    }

    @Test func patternPiecesMatchAsDocumented() throws {
        let vocabulary = ["messages": ["messages", "text_messages"], "list": ["list", "@messages"]]
        let pattern = try OptOutPattern("stop me? ~2 @list|spam*", vocabulary: vocabulary)
        func matches(_ message: String, blockers: [OptOutPattern.Word] = []) -> Bool {
            let words = OptOutText(message).words
            let blockers = OptOutPattern.WordSet(blockers)
            return words.indices.contains { !pattern.matchEnds(in: words, from: $0, gapBlockers: blockers).isEmpty }
        }
        #expect(matches("stop messages"))
        #expect(matches("stop me the text messages"))
        #expect(matches("stop spamming"))
        #expect(!matches("stop spam"), "a prefix needs more after it")
        #expect(!matches("stop all of these messages"), "the gap is two words")
        #expect(!matches("stop. messages"), "a gap never crosses a sentence")
        #expect(matches("stop, the messages"), "a gap steps over a comma")
        #expect(!matches("stop not messages", blockers: [.exact("not")]))
    }

    @Test func textIsFoldedForTheRules() {
        #expect(
            OptOutText("Don’t STOOOP!! l'invio, Straße…\nNÃO").words == [
                "dont", "stop", ".", "l", "invio", ",", "strasse", ".", "nao",
            ])
        #expect(OptOutText("pls nn mandatemi + msg 😡").words == ["please", "non", "mandatemi", "piu", "msg"])
        #expect(OptOutText(" ,.  ").words.isEmpty)
    }

    @Test func kindsKeepTheirStoredNames() throws {
        #expect(OptOutKind.allCases.map(\.rawValue) == ["keyword", "phrase", "button", "platform"])
        let decoded = try JSONDecoder().decode([OptOutKind].self, from: Data(#"["phrase","platform"]"#.utf8))
        #expect(decoded == [.phrase, .platform])
    }
}
