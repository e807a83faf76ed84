// sekisho's own page script: runs the WebAuthn ceremonies of the login,
// enrollment and account pages against /.sekisho/webauthn/*. It uses the
// browser's JSON helpers (parseCreationOptionsFromJSON,
// parseRequestOptionsFromJSON, toJSON) and falls back to converting
// base64url fields itself where a browser lacks them. No inline script,
// no third-party code: the pages' Content-Security-Policy allows only this file.
(function () {
  'use strict';

  function b64uToBuf(s) {
    s = s.replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) s += '=';
    var bin = atob(s);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  function bufToB64u(buf) {
    var bytes = new Uint8Array(buf);
    var bin = '';
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function creationOptions(json) {
    if (typeof PublicKeyCredential.parseCreationOptionsFromJSON === 'function') {
      return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    }
    var o = Object.assign({}, json);
    o.challenge = b64uToBuf(json.challenge);
    o.user = Object.assign({}, json.user, { id: b64uToBuf(json.user.id) });
    o.excludeCredentials = (json.excludeCredentials || []).map(function (c) {
      return Object.assign({}, c, { id: b64uToBuf(c.id) });
    });
    return o;
  }

  function requestOptions(json) {
    if (typeof PublicKeyCredential.parseRequestOptionsFromJSON === 'function') {
      return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    }
    var o = Object.assign({}, json);
    o.challenge = b64uToBuf(json.challenge);
    o.allowCredentials = (json.allowCredentials || []).map(function (c) {
      return Object.assign({}, c, { id: b64uToBuf(c.id) });
    });
    return o;
  }

  function credentialJSON(cred) {
    if (typeof cred.toJSON === 'function') {
      try { return cred.toJSON(); } catch (e) { /* fall through */ }
    }
    var r = cred.response;
    var out = {
      id: cred.id,
      rawId: bufToB64u(cred.rawId),
      type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: { clientDataJSON: bufToB64u(r.clientDataJSON) }
    };
    if (r.attestationObject) {
      out.response.attestationObject = bufToB64u(r.attestationObject);
      if (r.getTransports) out.response.transports = r.getTransports();
      if (r.getAuthenticatorData) out.response.authenticatorData = bufToB64u(r.getAuthenticatorData());
      if (r.getPublicKey && r.getPublicKey()) out.response.publicKey = bufToB64u(r.getPublicKey());
      if (r.getPublicKeyAlgorithm) out.response.publicKeyAlgorithm = r.getPublicKeyAlgorithm();
    } else {
      out.response.authenticatorData = bufToB64u(r.authenticatorData);
      out.response.signature = bufToB64u(r.signature);
      if (r.userHandle) out.response.userHandle = bufToB64u(r.userHandle);
    }
    return out;
  }

  function post(url, body) {
    return fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'Accept': 'application/json' },
      body: JSON.stringify(body || {})
    }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (j) {
        if (!res.ok) {
          var err = new Error(j.message || res.statusText);
          err.redirect = j.redirect;
          throw err;
        }
        return j;
      });
    });
  }

  function msg(name) {
    var main = document.getElementById('sekisho');
    return (main && main.dataset['msg' + name]) || '';
  }

  function run(button, ceremony) {
    var status = document.getElementById('sekisho-status');
    button.addEventListener('click', function () {
      if (!window.PublicKeyCredential || !navigator.credentials) {
        status.textContent = msg('Unsupported');
        status.className = 'status error';
        return;
      }
      button.disabled = true;
      status.textContent = msg('Working');
      status.className = 'status';
      ceremony().then(function (j) {
        window.location.assign(j.redirect);
      }).catch(function (e) {
        button.disabled = false;
        if (e && (e.name === 'NotAllowedError' || e.name === 'AbortError')) {
          status.textContent = msg('Cancelled');
        } else {
          status.textContent = (e && e.message) || msg('Error');
        }
        status.className = 'status error';
        if (e && e.redirect) {
          setTimeout(function () { window.location.assign(e.redirect); }, 1500);
        }
      });
    });
  }

  function login(button) {
    run(button, function () {
      return post('/.sekisho/webauthn/login/begin', { rd: button.dataset.rd || '', stepup: button.dataset.stepup === '1' })
        .then(function (opts) {
          return navigator.credentials.get({ publicKey: requestOptions(opts.publicKey), mediation: opts.mediation || undefined });
        })
        .then(function (cred) { return post('/.sekisho/webauthn/login/finish', credentialJSON(cred)); });
    });
  }

  function register(button, body) {
    run(button, function () {
      return post('/.sekisho/webauthn/register/begin', body)
        .then(function (opts) { return navigator.credentials.create({ publicKey: creationOptions(opts.publicKey) }); })
        .then(function (cred) { return post('/.sekisho/webauthn/register/finish', credentialJSON(cred)); });
    });
  }

  function init() {
    var b = document.getElementById('sekisho-login');
    if (b) login(b);
    b = document.getElementById('sekisho-enroll');
    if (b) register(b, { token: b.dataset.token });
    b = document.getElementById('sekisho-add');
    if (b) register(b, {});
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
})();
