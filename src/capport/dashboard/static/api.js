// The admin API as the dashboard's pages call it: the bearer token kept in
// this tab's sessionStorage, JSON requests, and the sign-in form.

const TOKEN_KEY = "capport-admin-token";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function storedToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

// Send one request with the token; resolve to the Response, or reject with
// ApiError carrying the API's own message. A 401 signs the tab out.
export async function request(path, { method = "GET", json } = {}) {
  const headers = new Headers({ Authorization: `Bearer ${storedToken() || ""}` });
  let body;
  if (json !== undefined) {
    headers.set("Content-Type", "application/json");
    body = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body, cache: "no-store" });
  } catch (error) {
    throw new ApiError(0, `The gateway did not respond (${error.message}).`);
  }
  if (response.ok) {
    return response;
  }
  const message = await errorMessage(response);
  if (response.status === 401) {
    signOut(message);
  }
  throw new ApiError(response.status, message);
}

export async function getJson(path) {
  const response = await request(path);
  return response.json();
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    if (body && typeof body.error === "string") {
      return body.error;
    }
  } catch (error) {
    // The body is not JSON; the status line is all there is.
  }
  return `${response.status} ${response.statusText}`;
}

let onSignedIn = () => {};

// Show the sign-in form until a token works, then show #app and call ready.
export function setUpSignIn(ready) {
  onSignedIn = ready;
  document.getElementById("login-form").addEventListener("submit", submitToken);
  document.getElementById("sign-out").addEventListener("click", () => signOut(""));
  if (storedToken()) {
    showApp();
  } else {
    showLogin("");
  }
}

async function submitToken(event) {
  event.preventDefault();
  const field = document.getElementById("token");
  sessionStorage.setItem(TOKEN_KEY, field.value.trim());
  try {
    await request("/api/v1/status");
  } catch (error) {
    showLogin(error.status === 401 ? "That token is invalid or revoked." : error.message);
    return;
  }
  field.value = "";
  showApp();
}

function showApp() {
  document.getElementById("login").hidden = true;
  document.getElementById("app").hidden = false;
  document.getElementById("sign-out").hidden = false;
  onSignedIn();
}

function showLogin(message) {
  document.getElementById("app").hidden = true;
  document.getElementById("sign-out").hidden = true;
  document.getElementById("login").hidden = false;
  document.getElementById("login-error").textContent = message;
  document.getElementById("token").focus();
}

export function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  showLogin(message);
}

export function showError(message) {
  document.getElementById("app-error").textContent = message;
}
