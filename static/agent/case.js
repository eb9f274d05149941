// The case page (templates/agent/case.html): 1-9 pick an outcome (a callback then asks for its time),
// Ctrl+Enter saves, and the first outcome has the focus so the keys work at once (after a refused save,
// the field that failed has it instead). Also: the hold's countdown and the call timer, the callback
// presets, and the coupon code shown as soon as an offer is chosen.
(function () {
  var form = document.getElementById("disposition");
  var radios = document.querySelectorAll('#disposition input[name="outcome"]');
  var callbackField = document.getElementById("id_callback_at");

  function pickOutcome(radio) {
    radio.checked = true; radio.focus();
    if (radio.value === "callback_requested" && callbackField) { callbackField.focus(); }
  }

  document.addEventListener("keydown", function (e) {
    var typing = /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName) && document.activeElement.type !== "radio";
    if ((e.ctrlKey || e.metaKey) && e.key === "Enter") { e.preventDefault(); document.getElementById("save").click(); return; }
    if (!typing && !e.ctrlKey && !e.metaKey && !e.altKey && e.key >= "1" && e.key <= "9" && radios[e.key - 1]) {
      e.preventDefault(); pickOutcome(radios[e.key - 1]);
    }
  });

  // The focus: on the field that failed a save, else on the first outcome.
  var failed = form && form.getAttribute("data-first-error");
  var target = null;
  if (failed === "outcome") { target = document.querySelector('#disposition input[name="outcome"]:checked') || radios[0]; }
  else if (failed === "__all__") { target = document.getElementById("disposition-errors"); }
  else if (failed) { target = document.getElementById("id_" + failed); }
  if (target) { target.focus(); } else if (radios.length) { radios[0].focus(); }

  // Callback presets: fill the field with a time inside calling hours, and choose "callback requested".
  document.querySelectorAll("#callback-presets button[data-value]").forEach(function (button) {
    button.addEventListener("click", function () {
      callbackField.value = button.getAttribute("data-value");
      var callback = document.querySelector('#disposition input[name="outcome"][value="callback_requested"]');
      if (callback) { callback.checked = true; }
      callbackField.focus();
    });
  });

  // The hold's countdown and the call timer, over the server's clock (the offset corrects this machine's).
  var desk = document.getElementById("desk");
  if (desk) {
    var serverNow = Number(desk.getAttribute("data-now")) * 1000;
    var offset = serverNow ? serverNow - Date.now() : 0;
    var leaseUntil = Number(desk.getAttribute("data-lease-until")) * 1000;
    var claimedAt = Number(desk.getAttribute("data-claimed-at")) * 1000 || serverNow;
    var holdLeft = document.getElementById("hold-left");
    var callTimer = document.getElementById("call-timer");
    var status = document.getElementById("hold-status");
    var warned = false, expired = false;
    var clock = function (ms) {
      var s = Math.max(0, Math.floor(ms / 1000)), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
      var ss = ("0" + (s % 60)).slice(-2);
      return h ? h + ":" + ("0" + m).slice(-2) + ":" + ss : m + ":" + ss;
    };
    var tick = function () {
      var now = Date.now() + offset;
      callTimer.textContent = clock(now - claimedAt);
      if (!leaseUntil) { return; }
      var left = leaseUntil - now;
      holdLeft.textContent = clock(left);
      if (left <= 60000 && left > 0 && !warned) { warned = true; status.textContent = desk.getAttribute("data-minute-text"); }
      if (left <= 0 && !expired) {
        expired = true; desk.classList.add("expired");
        status.textContent = desk.getAttribute("data-expired-text");
      }
    };
    tick();
    window.setInterval(tick, 1000);
  }

  // Choosing an offer prepares its coupon at once (the same code when the same offer is chosen again),
  // announced in a live region so it can be read out before the call is saved.
  var offer = document.getElementById("id_offer");
  var coupon = document.getElementById("offer-coupon");
  if (offer && coupon && window.fetch) {
    var token = form.querySelector('input[name="csrfmiddlewaretoken"]').value;
    // "html" comes escaped from the server with its data (offer, date) in <bdi>, to read right in right-to-left.
    var show = function (code, text, html) {
      coupon.textContent = "";
      if (code) {
        var label = document.createElement("span");
        label.className = "muted"; label.textContent = coupon.getAttribute("data-label-text");
        var strong = document.createElement("strong");
        strong.className = "coupon-code"; strong.dir = "ltr"; strong.textContent = code;
        var detail = document.createElement("span");
        detail.className = "coupon-detail";
        if (html) { detail.innerHTML = html; } else { detail.textContent = text; }
        coupon.append(label, " ", strong, " ", detail);
      } else {
        coupon.textContent = text;
      }
    };
    // One request at a time, the latest choice last: the server then keeps the code the page shows.
    var busy = false, again = false;
    var ask = function () {
      busy = true; again = false;
      coupon.setAttribute("aria-busy", "true");
      fetch(coupon.getAttribute("data-url"), {
        method: "POST", body: new URLSearchParams({offer: offer.value}), credentials: "same-origin",
        headers: {"X-CSRFToken": token, "Accept": "application/json"}
      }).then(function (response) {
        if (response.status === 404) { return {error: coupon.getAttribute("data-lost-text")}; }
        return response.json().catch(function () { return {error: coupon.getAttribute("data-failed-text")}; });
      }, function () {
        return {error: coupon.getAttribute("data-failed-text")};
      }).then(function (data) {
        busy = false;
        if (again) { ask(); return; }  // the agent chose again meanwhile: only the latest answer is shown
        coupon.removeAttribute("aria-busy");
        if (data.error) { show("", data.error); } else { show(data.code, data.text, data.html); }
      });
    };
    offer.addEventListener("change", function () {
      if (busy) { again = true; } else { ask(); }
    });
  }
})();
