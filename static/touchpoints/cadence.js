/* The cadence admin form (templates/admin/touchpoints/cadence/change_form.html): show only the settings the
   chosen trigger reads, and only the message fields a step's channel uses. The server does the same for a
   saved cadence (CadenceAdmin.get_fieldsets) and keeps validating whatever is sent; this file only follows
   the choices made on a form not saved yet. Which trigger reads which setting comes from the page
   (json_script "cadence-trigger-fields"), never from a copy kept here. */
(function () {
  "use strict";
  var HIDDEN = "cadence-not-applicable";

  function triggerFields() {
    var data = document.getElementById("cadence-trigger-fields");
    var select = document.getElementById("id_trigger");
    if (!data || !select) {
      return;
    }
    var map = JSON.parse(data.textContent);
    function apply() {
      var own = map.by_trigger[select.value] || [];
      map.specific.forEach(function (name) {
        document.querySelectorAll("#cadence_form .form-row.field-" + name).forEach(function (row) {
          row.classList.toggle(HIDDEN, own.indexOf(name) === -1);
        });
      });
      document.querySelectorAll("#cadence_form fieldset.cadence-trigger-settings").forEach(function (set) {
        set.classList.toggle(HIDDEN, own.length === 0);
      });
    }
    select.addEventListener("change", apply);
    apply();
  }

  function stepChannel(select) {
    var step = select.closest(".inline-related");
    if (!step) {
      return;
    }
    var call = select.value === "call";
    step.querySelectorAll(".fieldBox.field-template, .form-row.field-offer").forEach(function (box) {
      box.classList.toggle(HIDDEN, call);
    });
  }

  function stepChannels() {
    document.querySelectorAll(".cadence-steps select[name$='-channel']").forEach(stepChannel);
    // Steps added with "Add another" arrive later: listen on the document.
    document.addEventListener("change", function (event) {
      var target = event.target;
      if (target instanceof HTMLSelectElement && /-channel$/.test(target.name) && target.closest(".cadence-steps")) {
        stepChannel(target);
      }
    });
  }

  function init() {
    triggerFields();
    stepChannels();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
