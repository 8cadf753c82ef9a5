// HTML escaping for the master's rendered pages and SVG (text and attribute values alike).
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}
