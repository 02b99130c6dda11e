extension OptOutLanguage {
    static let spanish = OptOutLanguage(
        code: "es",
        vocabulary: [
            "messages": [
                "mensajes", "mensajitos", "sms", "correos", "emails", "mails", "promociones", "promos", "ofertas",
                "publicidad", "publicidades", "anuncios", "notificaciones", "spam", "newsletter", "boletines",
                "whatsapps", "whatsapp", "comunicaciones", "mensajes_promocionales", "campanas", "recordatorios",
                "alertas", "novedades",
            ],
            // Verbs that mean "stop" only before "de" + a verb: "deja un mensaje" is "leave a message", "para"
            // is also "for".
            "stopDe": ["dejen", "deja", "dejar", "dejad", "deje", "dejo", "para", "pare", "paro", "stop", "@stop"],
            "stop": ["paren", "parar", "detengan", "deten", "detener", "detenga", "cesen", "cese", "cesar"],
            "sendMe": [
                "enviarme", "mandarme", "escribirme", "contactarme", "llamarme", "molestarme", "spamearme",
                "hostigarme", "acosarme", "enviarnos", "mandarnos", "escribirnos",
            ],
            "send": [
                "enviar", "mandar", "escribir", "contactar", "spamear", "recibir", "me_envien", "me_manden", "@sendMe",
            ],
            "sendImperative": [
                "manden", "envien", "escriban", "contacten", "molesten", "llamen", "mandes", "envies", "escribas",
                "contactes", "molestes", "llames", "vuelvan_a_escribir", "vuelvan_a_enviar", "vuelvan_a_mandar",
                // Subjunctive, as in "¿cómo hago para que no me lleguen más?"; "no me llegan" is a complaint.
                "lleguen", "llegue",
            ],
            "want": ["quiero", "deseo", "queremos", "quisiera", "deseamos", "necesito"],
            "removeMe": [
                "sacame", "saquenme", "sacarme", "quitenme", "quitame", "quitarme", "borrenme", "borrame",
                "borrarme", "eliminenme", "eliminame", "eliminarme", "excluyanme", "retirenme",
            ],
            "list": [
                "lista", "listas", "lista_de_difusion", "difusion", "base", "base_de_datos", "registro", "contactos",
                "@messages",
            ],
            "promotions": [
                "promociones", "promocion", "promos", "ofertas", "publicidad", "mensajes", "mensajes_promocionales",
                "marketing", "newsletter", "comunicaciones", "anuncios",
            ],
        ],
        commands: [
            "dame|denme|deme|darnos de baja",
            "borren|eliminen|quiten|saquen|borra|elimina|quita|saca mi numero",
            "desuscribanme|desuscribeme|desapuntenme|desapuntame",
        ],
        phrases: [
            "@stopDe de @sendMe",
            "@stopDe de @send ~3 @messages",
            "@stop ~2 @messages",
            "stop a|al|a_los|a_las|con|con_los|con_las|los|las|sus|tus? @messages",
            "no me @sendImperative ~2 mas|nada|nunca_mas",
            "no me @sendImperative ~3 @messages",
            "ya? no @want ~3 @messages",
            "para|como|pa no recibir ~3 @messages",
            "ya? no @want mas $",
            "ya? no @want recibir_nada|recibir_mas",
            "ya? no @want que? me|nos? contacten|escriban|envien|manden",
            "no_mas|basta_de|basta_ya_de|suficiente_de|ya_basta_de ~1 @messages",
            "darme|denme|dame|deme|darnos de baja",
            "me|nos doy|quiero_dar|puede_dar|pueden_dar|puedes_dar|den|da|de|damos de baja",
            // "Pido la baja" alone: "baja" is also sick leave ("pido baja médica").
            "@want|solicito|pido|quisiera la? baja $",
            "@want|solicito|pido|quisiera la? baja de|del ~3 @list|whatsapp|este_numero",
            "baja de|del la|las|los|este|esta|estos|estas|sus|su|tu|tus? lista|listas|difusion|whatsapp|@messages",
            "dar de baja mi_numero|mi_telefono|mi_suscripcion|mi_contacto|@messages",
            "@removeMe ~1 de|del ~3 @list",
            "borren|eliminen|quiten|saquen|borra|elimina|quita|saca|borrar|eliminar|quitar|sacar mi|el numero|telefono|contacto|celular ~1 de|del ~3 @list",
            "desuscrib*|desinscrib*|dessuscrib*|desubscrib*",
            "desapuntarme|desapuntame|desapuntenme",
            "cancelar|anular|cancelen|anulen|cancela mi|la? suscripcion|subscripcion ~3 @list|a_los|a_las|$",
            "revoco|retiro ~2 consentimiento",
        ],
        reasons: [
            "nunca ~3 suscrib*|inscrib*|pedi|acepte|autorice|di_mi_numero",
            "no_me_interesa*|no_estoy_interesad*|sin_interes",
            "@messages",
        ],
        vetoes: [
            "sin_querer|por_error|por_equivocacion|por_accidente|sin_darme_cuenta|accidentalmente|me_equivoque_de_boton",
            "seguir|continuar recibiendo",
            "volver_a_suscribirme|suscribirme_de_nuevo|reactivar",
        ],
        negations: ["no", "nunca", "jamas", "ni", "tampoco", "sin"],
        gapBlockers: [
            "perder", "perderme", "pero", "si", "que", "dejar", "parar", "detener",
        ],
        reversals: ["paren", "terminen", "detengan", "perder", "perderme"],
        courtesies: [
            "por_favor", "gracias", "muchas_gracias", "ya", "ahora", "ahora_mismo", "inmediatamente", "hola",
            "buenos_dias", "buenas_tardes", "buenas", "porfis",
        ],
        buttonTitles: [
            "detener|parar|dejar_de_recibir|no_recibir|no_quiero|no_mas|stop|desactivar|pausar|bloquear las|los|mas? @promotions",
            "darme_de_baja|dar_de_baja|darse_de_baja|baja|desuscribirse|desuscribirme|cancelar_suscripcion|stop",
        ]
    )
}
