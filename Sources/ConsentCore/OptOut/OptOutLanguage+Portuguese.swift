extension OptOutLanguage {
    static let portuguese = OptOutLanguage(
        code: "pt",
        vocabulary: [
            "messages": [
                "mensagens", "msgs", "msg", "sms", "emails", "e_mails", "promocoes", "promos", "ofertas",
                "propagandas", "propaganda", "publicidade", "publicidades", "anuncios", "notificacoes", "spam",
                "newsletter", "novidades", "whatsapps", "whatsapp", "comunicados", "comunicacoes", "campanhas",
                "lembretes", "alertas", "mensagens_promocionais", "zaps",
                // Chat writes the singular for the kind: "parem de mandar mensagem".
                "mensagem", "promocao",
            ],
            // "Pare" and "para" stop only before "de": Italian "pare che…" is "it seems", "para" is also "for".
            "stopDe": [
                "pare", "parem", "parar", "para", "deixe", "deixem", "deixa", "deixar", "cessem", "cesse", "chega",
            ],
            "stop": ["parem", "parar", "interrompam", "interromper", "cancelem", "suspendam"],
            "send": [
                "mandar", "enviar", "escrever", "ligar", "contatar", "contactar", "spammar", "incomodar",
                "encher_o_saco", "encher", "receber",
            ],
            "sendImperative": [
                "mande", "mandem", "envie", "enviem", "manda", "envia", "escreva", "escrevam", "ligue", "liguem",
                "contate", "contatem", "contacte", "contactem", "incomode", "incomodem", "perturbe", "perturbem",
            ],
            "no": ["nao", "n", "nunca"],
            "want": ["quero", "desejo", "queremos", "gostaria_de", "preciso", "gostaria_de_nao"],
            "removeMe": [
                "me_tire", "me_tira", "me_tirem", "me_remova", "me_removam", "me_remove", "me_exclua", "me_excluam",
                "me_exclui", "me_retire", "me_retirem", "me_apague", "me_apaguem", "me_apaga", "tire_me", "tirem_me",
                "remova_me", "removam_me", "exclua_me", "excluam_me", "retire_me", "apaguem_me", "tirar_meu_numero",
                "remover_meu_numero", "excluir_meu_numero", "retirar_meu_numero", "sair", "me_tirar", "me_remover",
                "me_excluir",
            ],
            "from": ["da", "dessa", "desta", "de", "do", "desse", "deste", "das", "dos", "dessas", "destas"],
            "list": [
                "lista", "listas", "lista_de_transmissao", "transmissao", "cadastro", "base", "base_de_dados",
                "contatos", "grupo_de_transmissao", "@messages",
            ],
            "promotions": [
                "promocoes", "promocao", "promos", "ofertas", "publicidade", "propaganda", "propagandas",
                "mensagens", "mensagens_promocionais", "marketing", "newsletter", "comunicacoes", "novidades",
            ],
        ],
        commands: [
            "me descadastra|descadastre|descadastrem|tira|tire|tirem|remove|remova|removam|exclui|exclua|excluam",
            "me tira|tire|tirem|remove|remova|removam|exclui|exclua|excluam daqui|da_lista|dessa_lista|desta_lista",
            "tira|tire|tirem|remove|remova|removam|remover|exclui|exclua|excluam|excluir|apaga|apague|apaguem meu|o_meu numero",
        ],
        phrases: [
            "@stopDe de|com ~1 me @send",
            "@stopDe de|com ~1 @send ~3 @messages",
            "@stopDe de|com|dessas|desses|destas|destes|das|dos|disso ~1 @messages|mensagem",
            "@stop ~2 @messages",
            "stop a|as|os|com|com_as|com_os|de|das|dos|essas|esses? @messages",
            "@no me @sendImperative mais|nunca_mais",
            "@no me @sendImperative ~3 @messages",
            "@no @want mais? ~3 @messages",
            "pra|para|de|como @no receber ~3 @messages",
            "@no @want mais receber|ser_contatad*|ser_incomodad*",
            "@no @want receber_mais|receber_nada|ser_contatad*",
            "@removeMe @from ~2 @list",
            "tira|tire|tirem|remove|remova|removam|exclui|exclua|excluam|apaga|apague|apaguem|retire|retirem meu|o_meu numero|contato|telefone|celular ~1 @from ~2 @list",
            "descadastr*|desinscrev*|descadastro",
            "@want|como me? descadastrar|desinscrever|cancelar_a_inscricao|cancelar_inscricao",
            "cancelar|cancela|cancele a|minha? inscricao ~3 @list|$",
            // A subscription ("assinatura") may be a paid one; only the messages' is a withdrawal.
            "cancelar|cancela|cancele a|minha? assinatura ~3 @list",
            "revogo|retiro ~2 consentimento",
        ],
        reasons: [
            "nunca ~3 assinei|inscrevi|cadastrei|pedi|autorizei|aceitei",
            "nao|n ~1 tenho_interesse|interessad*|interessa|me_interessa",
            "@messages",
        ],
        vetoes: [
            "sem_querer|por_engano|por_erro|sem_intencao|acidentalmente|sem_perceber",
            "continuar|seguir recebendo|a_receber|receber",
            "me_inscrever_de_novo|voltar_a_receber|reativar",
        ],
        negations: ["nao", "n", "nunca", "jamais", "nem", "sem"],
        gapBlockers: ["perder", "mas", "se", "que", "parem", "parar", "deixar"],
        reversals: ["parem", "acabem", "percam", "perder"],
        courtesies: [
            "por_favor", "obrigado", "obrigada", "agora", "ja", "imediatamente", "ola", "oi", "bom_dia",
            "boa_tarde", "boa_noite", "pfvr", "pf", "obg", "brigado", "brigada", "valeu", "vlw",
        ],
        buttonTitles: [
            "parar|interromper|cancelar|stop|pausar|desativar|bloquear|nao_receber|nao_quero|sem|chega_de mais? receber? as|os|mais? @promotions",
            "sair|sair_da_lista|descadastrar|cancelar_inscricao|descadastrar_me|stop",
        ]
    )
}
