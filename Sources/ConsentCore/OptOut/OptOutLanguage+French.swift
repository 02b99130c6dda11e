extension OptOutLanguage {
    static let french = OptOutLanguage(
        code: "fr",
        vocabulary: [
            "messages": [
                "messages", "msg", "msgs", "sms", "textos", "mails", "emails", "e_mails", "courriels", "promotions",
                "promos", "offres", "pubs", "pub", "publicites", "publicite", "newsletter", "newsletters",
                "notifications", "spam", "spams", "whatsapp", "relances", "sollicitations", "communications",
                "annonces", "messages_promotionnels", "campagnes", "rappels", "alertes",
            ],
            "ads": ["pub", "pubs", "publicite", "publicites", "promos", "promotions", "spam", "spams", "offres"],
            "stop": [
                "arretez", "arrete", "arreter", "arretes", "stoppez", "stoppe", "stopper", "cessez",
                "cesse", "cesser",
            ],
            // The infinitive after "arrêtez de m'…" / "ne plus m'…": the person is the separate "m"/"me".
            "sendInfinitive": [
                "envoyer", "ecrire", "contacter", "harceler", "spammer", "relancer", "appeler", "deranger",
                "solliciter", "texter", "inonder", "bombarder",
            ],
            "sendImperative": [
                "envoyez", "ecrivez", "contactez", "envoie", "ecris", "contacte", "spammez", "relancez", "harcelez",
                "sollicitez", "derangez", "appelez",
            ],
            "want": [
                "veux", "voulons", "souhaite", "souhaitons", "desire", "voudrais", "souhaiterais", "veut",
            ],
            "unsubscribeMe": [
                "desabonnez", "desinscrivez", "desabonne", "desinscris", "retirez", "supprimez", "enlevez", "rayez",
                "sortez", "effacez", "retire", "supprime", "enleve",
            ],
            "list": [
                "liste", "listes", "liste_de_diffusion", "fichier", "base", "base_de_donnees", "mailing", "contacts",
                "@messages",
            ],
            "promotions": [
                "promotions", "promos", "promo", "offres", "pubs", "publicites", "publicite", "messages",
                "messages_promotionnels", "newsletter", "marketing", "communications", "offres_promotionnelles",
            ],
        ],
        commands: [
            "@unsubscribeMe moi|nous",
            "me|m desabonner|desinscrire|desinscrit|desabonne",
        ],
        phrases: [
            "@stop de|d ~3 @messages",
            "@stop les|vos|ces|tous_ces|toutes_ces|la|le @messages",
            "@stop de|d m|me|nous @sendInfinitive",
            "stop a|aux|au|les|la|le|de|d? @messages",
            // "Vous ne m'envoyez plus" is a complaint; an imperative starts its clause.
            "^ merci|s_il_vous_plait|please? ne? m|me|nous @sendImperative plus",
            "ne plus m|me|nous @sendInfinitive",
            "ne plus recevoir ~3 @messages",
            "ne @want plus ~4 @messages",
            "ne @want pas ~3 recevoir ~2 @messages",
            // Without "ne", "je veux plus de promos" asks for more: only "plus recevoir" is unambiguous.
            "@want plus recevoir|avoir ~3 @messages",
            "@want plus etre_contact*|etre_sollicit*|etre_derang*|etre_harcel*|rien_recevoir",
            "ne @want plus rien_recevoir|etre_contact*|etre_sollicit*|rien",
            "^ mais|et|donc|alors|par_contre|sinon? plus|pas de|d ~1 @ads",
            "^ mais|et|donc|alors|par_contre|sinon? plus|pas de|d ~1 @messages svp|merci|s_il_vous_plait|s_il_te_plait|$",
            "@unsubscribeMe moi|nous ~3 de|des|du ~3 @list",
            "desabonnez|desinscrivez|desabonne|desinscris moi|nous",
            "me|m|se|nous desabonner|desinscrire|retirer_de|retirer_des",
            "laissez|laisse|foutez|fichez moi|nous ~1 tranquille|la_paix",
            "^ @want|comment|je_souhaite_me|je_veux_me? desabonner|desinscrire|desabonnement|desinscription",
            "retire|retirez|retirer|supprimez|supprimer mon numero|numero_de_telephone|contact ~3 de|des|du",
            "je retire|retire mon consentement",
            "assez|marre|ras_le_bol de|des|d ~2 @messages",
        ],
        reasons: [
            "jamais ~3 inscrit*|abonne*|demande|accepte|consenti",
            "pas_interess*|aucun_interet|pas_interesse|me_saoule*|m_enerve*",
            "@messages",
        ],
        vetoes: [
            "par_erreur|par_megarde|sans_faire_expres|sans_le_vouloir|par_accident|involontairement|erreur_de_manip*",
            "continuer a|de recevoir",
            "reinscrire|reinscrivez|reabonner|reabonnez|reinscription",
        ],
        negations: ["ne", "n", "pas", "jamais", "non", "sans", "aucun", "aucune", "ni", "pourquoi"],
        gapBlockers: [
            "rater", "manquer", "perdre", "mais", "si", "que", "qu", "arreter", "cesser", "stopper",
        ],
        reversals: ["arretent", "cessent", "finissent", "rater", "manquer"],
        courtesies: [
            "s_il_vous_plait", "s_il_te_plait", "merci", "merci_beaucoup", "maintenant", "tout_de_suite",
            "immediatement", "bonjour", "bonsoir",
        ],
        buttonTitles: [
            "arreter|stopper|stop|suspendre|desactiver|bloquer|plus_de|pas_de|ne_plus_recevoir les|la|des|de? @promotions",
            "se_desabonner|me_desabonner|desabonnement|desinscription|se_desinscrire|desabonner|stop",
        ]
    )
}
