import HTTPTypes
import Hummingbird

/// `/widget.js`: the checkout widget. Plain ES5-compatible JavaScript with no dependencies, no `eval`, no inline
/// handlers and no inline styles in markup, so it runs under a strict Content-Security-Policy (`script-src` naming
/// this service is enough). It writes the notice with `textContent`, exactly as stored, with one unticked box per
/// category the notice covers (the notice itself labels the box when there is one category), and posts a
/// `categories` answer for each: ticking order updates can never grant marketing as well.
enum WidgetScript {
    static func response() -> Response {
        Response(
            status: .ok,
            headers: [
                .contentType: "text/javascript; charset=utf-8", .cacheControl: "public, max-age=300",
                .xContentTypeOptions: "nosniff",
                .crossOriginResourcePolicy: "cross-origin",
            ],
            body: .init(byteBuffer: ByteBuffer(string: source)))
    }

    static let source = #"""
        /* ConsentLedger checkout widget.
           <div id="consent"></div>
           <script src="https://CONSENTLEDGER/widget.js" data-token="TOKEN" data-target="consent"></script>
           One unticked box per category the notice covers. The target receives bubbling events:
           consentledger:ready (detail.categories), consentledger:accepted (detail.consents, detail.categories: what
           was ticked), consentledger:declined, consentledger:error (detail.code, detail.message).
           ConsentLedger.submit(target) posts the choice from a host page's own button and returns a Promise. */
        (function () {
          "use strict";
          var script = document.currentScript;
          if (!script || !window.fetch) return;
          var base = new URL(script.src, document.baseURI).origin;
          var words = {
            en: ["Save my choice", "Thank you: your consent is recorded.", "Your choice is saved: nothing was recorded.", "This form has expired. Please reload the page.", "Something went wrong. Please try again."],
            it: ["Salva la mia scelta", "Grazie: il tuo consenso \u00e8 registrato.", "Scelta salvata: non \u00e8 stato registrato nulla.", "Questo modulo \u00e8 scaduto. Ricarica la pagina.", "Si \u00e8 verificato un errore. Riprova."],
            de: ["Auswahl speichern", "Danke: Ihre Einwilligung ist gespeichert.", "Auswahl gespeichert: Es wurde nichts erfasst.", "Dieses Formular ist abgelaufen. Bitte laden Sie die Seite neu.", "Etwas ist schiefgelaufen. Bitte erneut versuchen."],
            fr: ["Enregistrer mon choix", "Merci : votre consentement est enregistr\u00e9.", "Choix enregistr\u00e9 : rien n'a \u00e9t\u00e9 enregistr\u00e9.", "Ce formulaire a expir\u00e9. Veuillez recharger la page.", "Une erreur est survenue. Veuillez r\u00e9essayer."],
            es: ["Guardar mi elecci\u00f3n", "Gracias: tu consentimiento est\u00e1 registrado.", "Elecci\u00f3n guardada: no se ha registrado nada.", "Este formulario ha caducado. Recarga la p\u00e1gina.", "Algo ha fallado. Int\u00e9ntalo de nuevo."],
            pt: ["Guardar a minha escolha", "Obrigado: o seu consentimento est\u00e1 registado.", "Escolha guardada: nada foi registado.", "Este formul\u00e1rio expirou. Recarregue a p\u00e1gina.", "Algo correu mal. Tente novamente."]
          };

          function emit(target, name, detail) {
            var event;
            try { event = new CustomEvent(name, { bubbles: true, detail: detail }); }
            catch (e) { event = document.createEvent("CustomEvent"); event.initCustomEvent(name, true, false, detail); }
            target.dispatchEvent(event);
          }

          function element(tag, className, text) {
            var node = document.createElement(tag);
            if (className) node.className = className;
            if (text !== undefined) node.textContent = text;
            return node;
          }

          function request(method, path, body) {
            return fetch(base + path, {
              method: method, mode: "cors", credentials: "omit", cache: "no-store",
              headers: body ? { "Content-Type": "application/json" } : {},
              body: body ? JSON.stringify(body) : undefined
            }).then(function (response) {
              return response.json().catch(function () { return {}; }).then(function (json) {
                if (!response.ok) {
                  var error = new Error((json.error && json.error.message) || ("HTTP " + response.status));
                  error.code = (json.error && json.error.code) || "http_" + response.status;
                  error.status = response.status;
                  throw error;
                }
                return json;
              });
            });
          }

          function mount(target, token) {
            var path = "/v1/consent-sessions/" + encodeURIComponent(token);
            var state = { decided: false, text: words.en };
            var root = element("div", "consentledger");
            var status = element("p", "consentledger-status");
            status.setAttribute("role", "status");
            status.setAttribute("aria-live", "polite");
            root.appendChild(status);
            target.appendChild(root);

            function fail(error) {
              status.textContent = error.status === 410 ? state.text[3] : state.text[4];
              emit(target, "consentledger:error", { code: error.code || "network_error", message: error.message });
              throw error;
            }

            return request("GET", path).then(function (session) {
              var language = String(session.notice.language || "en").toLowerCase().split("-")[0];
              state.text = words[language] || words.en;
              root.setAttribute("lang", session.notice.language);
              var categories = session.categories || [];
              var several = categories.length > 1;
              var group = element("div", "consentledger-categories");
              var boxes = [];
              // With several categories the notice is read first and each box names its category's purposes.
              if (several) {
                var heading = element("p", "consentledger-notice", session.notice.text);
                heading.id = "consentledger-" + Math.random().toString(36).slice(2);
                group.setAttribute("role", "group");
                group.setAttribute("aria-labelledby", heading.id);
                root.insertBefore(heading, status);
              }
              for (var i = 0; i < categories.length; i++) {
                var id = "consentledger-" + Math.random().toString(36).slice(2);
                var box = element("input", "consentledger-box");
                box.type = "checkbox";
                box.id = id;
                box.checked = false;
                box.setAttribute("data-category", categories[i].category);
                var label = element("label", several ? "consentledger-category" : "consentledger-notice",
                  several ? categories[i].label : session.notice.text);
                label.htmlFor = id;
                var row = element("div", "consentledger-row");
                row.appendChild(box);
                row.appendChild(label);
                group.appendChild(row);
                boxes.push(box);
              }
              var save = element("button", "consentledger-save", state.text[0]);
              save.type = "button";
              root.insertBefore(group, status);
              root.insertBefore(save, status);

              function lock(locked) {
                for (var j = 0; j < boxes.length; j++) boxes[j].disabled = locked;
                save.disabled = locked;
              }

              state.submit = function () {
                if (state.decided) return Promise.resolve(state.result);
                lock(true);
                var answers = {};
                var ticked = [];
                for (var j = 0; j < boxes.length; j++) {
                  var category = boxes[j].getAttribute("data-category");
                  answers[category] = boxes[j].checked === true;
                  if (answers[category]) ticked.push(category);
                }
                var accepted = ticked.length > 0;
                return request("POST", path + "/decision", { categories: answers }).then(function (result) {
                  state.decided = true;
                  state.result = result;
                  status.textContent = accepted ? state.text[1] : state.text[2];
                  emit(target, accepted ? "consentledger:accepted" : "consentledger:declined",
                    { consents: result.consents || [], categories: ticked });
                  return result;
                }, function (error) {
                  if (error.status !== 410) lock(false);
                  return fail(error);
                });
              };
              save.addEventListener("click", function () { state.submit().catch(function () {}); });
              target.consentLedger = state;
              emit(target, "consentledger:ready", { expiresAt: session.expiresAt, purposes: session.notice.purposes, categories: categories });
            }, fail);
          }

          window.ConsentLedger = window.ConsentLedger || {
            submit: function (target) {
              var node = typeof target === "string" ? document.getElementById(target) : target;
              if (!node || !node.consentLedger || !node.consentLedger.submit) return Promise.reject(new Error("widget not ready"));
              return node.consentLedger.submit();
            }
          };

          var token = script.getAttribute("data-token");
          var targetId = script.getAttribute("data-target") || "";
          if (!token || !targetId) return;
          function start() {
            var target = document.getElementById(targetId);
            if (target) mount(target, token).catch(function () {});
          }
          if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
        })();
        """#
}
