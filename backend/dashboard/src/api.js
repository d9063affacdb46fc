// REST client: tokens in sessionStorage, RFC 9457 problems turned into readable errors.
const TOKENS = "gridledger.tokens";

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail ? `${problem.title}: ${problem.detail}` : problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export function tokens() {
  try {
    return JSON.parse(sessionStorage.getItem(TOKENS) || "null");
  } catch {
    return null;
  }
}

export const signedIn = () => Boolean(tokens());

function store(value) {
  if (value) sessionStorage.setItem(TOKENS, JSON.stringify(value));
  else sessionStorage.removeItem(TOKENS);
}

async function request(path, { method = "GET", body, auth = false, headers: extra = {} } = {}) {
  const headers = { Accept: "application/json", ...extra };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const pair = tokens();
  if (auth && pair) headers.Authorization = `Bearer ${pair.access_token}`;
  const reply = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (reply.status === 204) return null;
  const data = await reply.json().catch(() => ({ title: reply.statusText }));
  if (!reply.ok) throw new ApiError(reply.status, data);
  return data;
}

let refreshing = null;

async function refresh() {
  const pair = tokens();
  if (!pair) return false;
  refreshing ??= request("/v1/auth/refresh", { method: "POST", body: { refresh_token: pair.refresh_token } })
    .then((fresh) => { store(fresh); return true; })
    .catch(() => { store(null); return false; })
    .finally(() => { refreshing = null; });
  return refreshing;
}

/** GET a public endpoint. */
export const get = (path) => request(path);

/** Call an endpoint as the signed-in account (refreshes the access token once). */
async function asMe(path, options = {}) {
  try {
    return await request(path, { ...options, auth: true });
  } catch (error) {
    if (error.status === 401 && (await refresh())) return request(path, { ...options, auth: true });
    throw error;
  }
}

/** GET an endpoint that needs the signed-in account. */
export const getMine = (path) => asMe(path);

/** POST as the signed-in account; one Idempotency-Key per user action makes a retry safe. */
export const postMine = (path, body, idempotencyKey) =>
  asMe(path, { method: "POST", body, headers: idempotencyKey ? { "Idempotency-Key": idempotencyKey } : {} });

/** DELETE as the signed-in account. */
export const deleteMine = (path) => asMe(path, { method: "DELETE" });

/** Sign-In with Ethereum: the signed EIP-4361 message for tokens, kept like the email sign-in's. */
export async function siweLogin(message, signature) {
  store(await request("/v1/auth/siwe/verify", { method: "POST", body: { message, signature } }));
  return getMine("/v1/auth/me");
}

export async function login(email, password) {
  store(await request("/v1/auth/login", { method: "POST", body: { email, password } }));
  return getMine("/v1/auth/me");
}

export async function logout() {
  const pair = tokens();
  store(null);
  if (pair) await request("/v1/auth/logout", { method: "POST", body: { refresh_token: pair.refresh_token } }).catch(() => {});
}

export function query(path, params) {
  const search = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== ""));
  return search.toString() ? `${path}?${search}` : path;
}
