// The peer-name rule, one for the hello message and the peers' --name: a name becomes the
// peer's id in URLs, logs (`key=value`), the dashboard and the history, so it holds no spaces,
// quotes or slashes.

const PEER_NAME = /^[A-Za-z0-9._:-]{1,64}$/;

/** The rule in words, for error messages. */
export const PEER_NAME_RULE = "1..64 letters, digits and . _ : -";

export function isPeerName(name: string): boolean {
  return PEER_NAME.test(name);
}
