extension OptOutLanguage {
    static let german = OptOutLanguage(
        code: "de",
        vocabulary: [
            "messages": [
                "nachrichten", "sms", "e_mails", "emails", "mails", "werbung", "werbenachrichten", "werbemails",
                "angebote", "newsletter", "promos", "promotions", "aktionen", "spam", "benachrichtigungen", "infos",
                "whatsapp_nachrichten", "whatsapps", "whatsapp", "marketing", "mitteilungen", "reklame",
                "werbebotschaften", "updates", "erinnerungen", "kampagnen", "rundschreiben",
            ],
            // What a one-line "Keine Werbung!" can be about: not "Keine Nachricht" ("no message arrived").
            "ads": [
                "werbung", "werbenachrichten", "werbemails", "angebote", "newsletter", "promos", "promotions",
                "aktionen", "spam", "reklame", "marketing",
            ],
            "stop": ["stopp", "stoppt", "stoppen", "stoppen_sie", "beendet", "beenden_sie", "unterlasst"],
            "hearUp": ["hort", "hor", "horen_sie", "hoert", "hoer", "hoeren_sie", "horen", "hort_bitte"],
            "write": [
                "schreiben", "schicken", "senden", "zuschreiben", "zu_schreiben", "zu_schicken", "zuzuschicken",
                "zu_senden", "zuzusenden", "kontaktieren", "zu_kontaktieren", "spammen", "zuzuspammen",
                "zu_spammen", "belastigen", "zu_belastigen", "nerven", "zu_nerven", "anzuschreiben", "@messages",
            ],
            "sendImperative": [
                "schreibt", "schreiben_sie", "schreib", "schick", "schickt", "schicken_sie", "sendet", "senden_sie",
                "send", "kontaktiert", "kontaktieren_sie", "kontaktier", "belastigt", "belastigen_sie", "nervt",
            ],
            "want": [
                "will", "mochte", "moechte", "mochten", "wollen", "wunsche", "wuensche", "brauche", "brauchen",
                "mag",
            ],
            "unsubscribe": ["abmelden", "abbestellen", "austragen"],
            "removeImperative": [
                "entfernt", "entfernen_sie", "loscht", "loschen_sie", "streicht", "streichen_sie", "nehmt",
                "nehmen_sie", "tragt", "tragen_sie",
            ],
            "number": ["nummer", "telefonnummer", "handynummer", "mobilnummer", "kontaktdaten", "daten"],
            "list": [
                "liste", "verteiler", "verteilerliste", "mailingliste", "datenbank", "kartei", "kontaktliste",
                "@messages",
            ],
            "promotions": [
                "werbung", "angebote", "aktionen", "promotions", "promos", "marketing", "newsletter", "nachrichten",
                "werbenachrichten", "marketing_nachrichten", "marketingnachrichten", "reklame", "updates",
            ],
        ],
        commands: [
            "meldet|melden_sie|melde|meld mich ab",
            "tragt|tragen_sie|trag mich aus",
            "mich abmelden|austragen|entfernen|loschen",
        ],
        phrases: [
            // Not "keine Nachrichten mehr" anywhere: "ich bekomme keine Nachrichten mehr" is a complaint.
            "^ nein? danke? bitte? keine|kein ~2 @messages mehr",
            "^ nein? danke? bitte? keine|kein @ads bitte|danke? $",
            "keine|kein ~1 @messages mehr? bitte",
            "bitte keine|kein ~2 @messages",
            "@want ~1 keine|kein ~2 @messages",
            "@want ~3 @messages nicht_mehr",
            "@want ~2 nicht|nichts mehr ~3 bekommen|erhalten|kriegen|angeschrieben|kontaktiert|angerufen|zugespammt",
            "@hearUp auf ~4 @write",
            "@hearUp auf damit",
            "bitte ~1 nicht|nie|keine mehr ~1 schreiben|anschreiben|kontaktieren|schicken|senden|zuschicken|anrufen|@messages",
            "wie ~3 das|es|sie|diese|die_nachrichten|die_werbung abbestellen|abmelden|abstellen",
            "@sendImperative mir|mich|uns? ~2 nicht|nichts|nie mehr",
            "@sendImperative mir|uns? keine|kein ~2 @messages",
            "@stop ~3 @messages",
            "stop mit? die|der|den|den_ganzen|die_ganze|eure|ihre? @messages",
            "@messages ~2 abbestellen|abmelden|stoppen|beenden|kundigen|deaktivieren|unterlassen",
            "meldet|melden_sie|melde|meld mich ~3 ab",
            "melde|melden ich|wir mich|uns ~3 ab",
            "lasst|lassen_sie|lass mich ~2 in_ruhe",
            "schluss|genug mit ~2 @messages",
            "tragt|tragen_sie|trag mich ~3 aus",
            "@removeImperative mich ~3 @list",
            "@removeImperative meine|die @number ~3 @list|aus",
            "mich ~2 @unsubscribe|entfernen|loschen|streichen",
            "@want ~2 @unsubscribe",
            "abmeldung|abbestellung von|vom ~3 @list",
            "widerrufe|widerrufen ~3 einwilligung|zustimmung",
        ],
        reasons: [
            "nie|niemals ~3 angemeldet|eingewilligt|zugestimmt|eingetragen|abonniert",
            "kein_interesse|nicht_interessiert|unerwunscht|ungefragt",
            "@messages",
        ],
        vetoes: [
            "aus_versehen|versehentlich|unabsichtlich|irrtumlich|aus_verse*",
            "weiter|weiterhin bekommen|erhalten|kriegen|bekomme|erhalte",
            "wieder_anmelden|wieder_eintragen|neu_anmelden",
        ],
        negations: ["nicht", "nie", "niemals", "kein", "keine", "keinen", "ohne", "warum", "wieso", "weshalb"],
        gapBlockers: [
            "verpassen", "aber", "wenn", "falls", "dass", "aufhoren", "aufhort", "stoppen",
        ],
        reversals: ["verpassen", "aufhoren", "aufhort", "enden", "als"],
        courtesies: [
            "bitte", "danke", "sofort", "jetzt", "endlich", "hallo", "bitte_sehr", "vielen_dank", "danke_schon",
        ],
        buttonTitles: [
            "@promotions stoppen|abbestellen|abmelden|beenden|deaktivieren|pausieren|ausschalten",
            "stopp|stop|keine|kein ~1 @promotions mehr?",
            "abmelden|abbestellen|austragen|stopp|stop|vom_newsletter_abmelden",
        ]
    )
}
