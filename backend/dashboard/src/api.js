// @ts-check
// REST clients generated from the API's OpenAPI document: `openapi-fetch` typed by the `paths`
// that `openapi-typescript` wrote into api-schema.d.ts (`npm run gen:api`; a test fails when the
// committed file is stale, and `npm run lint:types` checks every call against it).
// `api` is anonymous; `mine` sends the signed-in account's token (refreshed once on a 401) and
// an Idempotency-Key with each POST. Tokens live in sessionStorage. `data(call)` gives the
// body, or throws an ApiError carrying the RFC 9457 problem.
import createClient from "openapi-fetch";

/** @typedef {import("./api-schema").paths} Paths */
/** @typedef {import("./api-schema").components["schemas"]} Schemas */

const TOKENS = "gridledger.tokens";
const options = { baseUrl: location.origin, headers: { Accept: "application/json" } };

/** @type {import("openapi-fetch").Client<Paths>} */
export const api = createClient(options);
/** @type {import("openapi-fetch").Client<Paths>} */
export const mine = createClient(options);

export class ApiError extends Error {
  /** @param {number} status @param {any} problem */
  constructor(status, problem) {
    super(problem.detail ? `${problem.title}: ${problem.detail}` : problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

/** @returns {Schemas["TokenPair"] | null} */
export function tokens() {
  try {
    return JSON.parse(sessionStorage.getItem(TOKENS) || "null");
  } catch {
    return null;
  }
}

export const signedIn = () => Boolean(tokens());

/** @param {Schemas["TokenPair"] | null | undefined} value */
function store(value) {
  if (value) sessionStorage.setItem(TOKENS, JSON.stringify(value));
  else sessionStorage.removeItem(TOKENS);
}

/**
 * The body of an openapi-fetch result, or an ApiError carrying the problem.
 * @template T
 * @param {Promise<{ data?: T, error?: unknown, response: Response }>} pending
 * @returns {Promise<T>}
 */
export async function data(pending) {
  const { data: body, error, response } = await pending;
  if (!response.ok) throw new ApiError(response.status, error && typeof error === "object" ? error : { title: response.statusText });
  return /** @type {T} */ (body);
}

/** @type {Promise<boolean> | null} */
let refreshing = null;

async function refresh() {
  const pair = tokens();
  if (!pair) return false;
  refreshing ??= data(api.POST("/v1/auth/refresh", { body: { refresh_token: pair.refresh_token } }))
    .then((fresh) => { store(fresh); return true; })
    .catch(() => { store(null); return false; })
    .finally(() => { refreshing = null; });
  return refreshing;
}

/** @param {Request} request */
function authorize(request) {
  const pair = tokens();
  if (pair) request.headers.set("Authorization", `Bearer ${pair.access_token}`);
  return request;
}

const retries = new Map(); // request id → an unsent copy, for the one retry after a refresh
mine.use({
  onRequest({ request, id }) {
    if (request.method === "POST") request.headers.set("Idempotency-Key", crypto.randomUUID());
    authorize(request);
    retries.set(id, request.clone());
    return request;
  },
  async onResponse({ response, id }) {
    const copy = retries.get(id);
    retries.delete(id);
    if (response.status !== 401 || !copy || !(await refresh())) return response;
    return fetch(authorize(copy));
  },
  onError({ id }) {
    retries.delete(id);
  },
});

/**
 * Sign-In with Ethereum: the signed EIP-4361 message for tokens, kept like the email sign-in's.
 * @param {string} message @param {string} signature
 */
export async function siweLogin(message, signature) {
  store(await data(api.POST("/v1/auth/siwe/verify", { body: { message, signature } })));
  return data(mine.GET("/v1/auth/me"));
}

/** @param {string} email @param {string} password */
export async function login(email, password) {
  store(await data(api.POST("/v1/auth/login", { body: { email, password } })));
  return data(mine.GET("/v1/auth/me"));
}

export async function logout() {
  const pair = tokens();
  store(null);
  if (pair) await api.POST("/v1/auth/logout", { body: { refresh_token: pair.refresh_token } }).catch(() => {});
}
