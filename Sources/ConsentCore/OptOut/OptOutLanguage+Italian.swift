extension OptOutLanguage {
    static let italian = OptOutLanguage(
        code: "it",
        vocabulary: [
            // Verbs that take "di" + infinitive or an object: "smettetela di scrivermi", "fermate le promozioni".
            // "Basta" is not here: it is also "it is enough to" ("basta rispondere a questo messaggio").
            "stop": [
                "smettetela", "smettila", "smettete", "smetti", "smettere", "smettiamola", "finitela", "finiscila",
                "piantatela", "piantala", "fermate", "ferma", "fermare", "interrompete", "interrompi",
                "interrompere", "bloccate", "blocca", "bloccare", "stoppate", "stoppa", "sospendete",
                "sospendi", "disattivate", "disattiva",
            ],
            // The person as object, joined to the verb as Italian writes it.
            "sendMe": [
                "mandarmi", "inviarmi", "scrivermi", "spammarmi", "contattarmi", "disturbarmi", "tartassarmi",
                "messaggiarmi", "spedirmi", "chiamarmi", "mandatemi", "inviatemi", "scrivetemi", "contattatemi",
                "spammatemi", "disturbatemi", "mandarci", "inviarci", "scriverci",
            ],
            "send": [
                "mandare", "inviare", "scrivere", "spedire", "ricevere", "mandate", "inviate", "scrivete", "mandi",
                "invii", "scrivi", "contattate", "contatti", "spammate", "spedite", "arrivare", "@sendMe",
            ],
            "messages": [
                "messaggi", "msg", "mess", "mex", "sms", "email", "mail", "e_mail", "promozioni", "promo",
                "offerte", "pubblicita", "newsletter", "notifiche", "comunicazioni", "spam", "whatsapp",
                "aggiornamenti", "volantini", "promemoria", "messaggini", "messaggi_promozionali", "campagne",
                "comunicazioni_commerciali", "proposte", "iniziative",
            ],
            "these": [
                "i", "le", "gli", "la", "il", "lo", "l", "la_vostra", "questa", "questi", "queste", "sti", "ste",
                "tutti", "tutte", "i_vostri", "le_vostre", "vostri", "vostre", "tutti_i", "tutte_le", "tutti_questi",
                "tutte_queste", "altri", "altre",
            ],
            "remove": [
                "togliete", "rimuovete", "cancellate", "eliminate", "levate", "togli", "rimuovi", "cancella",
                "elimina", "leva", "togliere", "rimuovere", "cancellare", "eliminare",
            ],
            "want": ["voglio", "vogliamo", "desidero", "desideriamo", "vorrei", "gradisco", "intendo"],
            "removeMe": [
                "cancellami", "cancellatemi", "toglimi", "toglietemi", "rimuovimi", "rimuovetemi", "eliminami",
                "eliminatemi", "disiscrivimi", "disiscrivetemi", "levatemi", "levami", "depennatemi",
            ],
            "removeMyself": [
                "disiscrivermi", "cancellarmi", "togliermi", "rimuovermi", "essere_cancellat*", "essere_rimoss*",
                "essere_tolt*", "essere_eliminat*", "uscire_dalla_lista", "annullare_l_iscrizione",
                "disattivare_le_notifiche", "revocare_il_consenso",
            ],
            "from": ["da", "dalla", "dalle", "dai", "dal", "dagli", "dall", "della", "dalla_vostra"],
            "list": [
                "lista", "liste", "mailing_list", "rubrica", "database", "elenco", "newsletter", "iscritti",
                "contatti", "broadcast", "invii", "@messages",
            ],
            "promotions": [
                "promozioni", "promo", "offerte", "pubblicita", "messaggi", "messaggi_promozionali", "marketing",
                "newsletter", "comunicazioni", "comunicazioni_promozionali", "comunicazioni_commerciali",
            ],
        ],
        commands: [
            "disiscrivi|cancella|rimuovi|togli|elimina|escludi me|mi",
            "cancella|rimuovi|togli|elimina il? mio numero",
        ],
        phrases: [
            "@stop di? @sendMe",
            "@stop di? @send ~3 @messages",
            "@stop ~3 @messages",
            // English "stop" is Italian too, but only right before its object: "stop by and email me" is English.
            "stop a|ai|alle|al|agli|con|con_i|con_le|con_la|@these? @messages",
            "basta con? @these? @messages",
            "basta @sendMe ~2 piu|@messages|$",
            "non mi? @send ~2 piu|mai_piu",
            "non @want ~4 @messages",
            "non @want piu ~2 nulla|niente|essere_contattat*|sentirvi",
            "non @want ricevere ~2 nulla|niente",
            "non @want essere_contattat*|essere_disturbat*",
            "@removeMe @from ~3 @list",
            "@remove il|mio|il_mio|i_miei numero|contatto|contatti|dati ~2 @from ~3 @list",
            // Not "posso disiscrivermi più tardi?": a question about later is not a request now.
            "@want|come_posso|come_faccio_a|come_si_fa_a|fatemi|aiutatemi_a @removeMyself",
            "annulla|annullare|cancella|cancellare l|la|mia|la_mia iscrizione ~3 @list|whatsapp|$",
            "revoco|revocare ~2 consenso",
        ],
        reasons: [
            "mai ~2 iscritt*|registrat*|chiesto|acconsentito|autorizzato|dato_il_consenso",
            "non ~2 interess*|interessat*",
            "@messages",
        ],
        vetoes: [
            "per_sbaglio|per_errore|senza_volere|senza_volerlo|inavvertitamente|erroneamente|involontariamente",
            "continuare|continuare_a ricevere|riceverle|riceverli",
            "reiscrivermi|riscrivermi|iscrivermi_di_nuovo|reiscrivetemi",
        ],
        negations: ["non", "mai", "nessun", "nessuna", "nemmeno", "neanche", "senza", "no"],
        gapBlockers: [
            "smettere", "smettete", "fermare", "interrompere", "perdere", "perdermi", "ma", "se", "che", "tranne",
        ],
        reversals: ["smettano", "finiscano", "fermino", "interrompano", "cessino", "smettere", "finire"],
        courtesies: [
            "per_favore", "per_piacere", "perfavore", "grazie", "subito", "ora", "adesso", "gentilmente", "ciao",
            "salve", "buongiorno", "buonasera", "prego", "pf",
        ],
        buttonTitles: [
            "interrompi|stop|blocca|ferma|sospendi|disattiva|basta|smetti_di_ricevere|non_ricevere_piu|no @promotions",
            "disiscriviti|disiscrivimi|annulla_iscrizione|cancella_iscrizione|disiscrizione",
        ]
    )
}
