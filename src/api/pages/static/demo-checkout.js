// The demo merchant's page: the offer the shopper picks in <coverline-offers> goes into the
// order form, for the merchant's back end to sell.
(function () {
  "use strict";
  var field = document.getElementById("offer-token");
  document.addEventListener("coverline-offer-selected", function (event) {
    var offer = event.detail && event.detail.offer;
    field.value = offer ? offer.offer_token : "";
  });
})();
