// MAC addresses, one way for everyone: the boot routes (iPXE's ${net0/mac}, PXELINUX's
// 01-aa-bb-... file names), the groups and topology files, --reimage, the admin API, the
// client's --mac and the hello message all read a MAC here and store it in one form:
// lower-case hex pairs joined by colons ("52:54:00:ab:cd:ef").

const MAC = /^([0-9a-fA-F]{2})([-:]?)([0-9a-fA-F]{2})(?:\2([0-9a-fA-F]{2})){4}$/;

/**
 * "52-54-00-AB-cd-ef", "52:54:00:ab:cd:ef" or "525400abcdef" -> "52:54:00:ab:cd:ef"; null when
 * the text is not a MAC (one separator throughout, or none).
 */
export function normalizeMac(text: string): string | null {
  if (!MAC.test(text)) return null;
  const hex = text.replace(/[-:]/g, "").toLowerCase();
  return hex.match(/../g)!.join(":");
}

/** Like normalizeMac, for text that must be a MAC: a TypeError names `what` and the value. */
export function parseMac(text: string, what = "MAC"): string {
  const mac = normalizeMac(text);
  if (mac === null) {
    throw new TypeError(
      `Invalid ${what} "${text}": expected six hex pairs like 52:54:00:12:34:56`,
    );
  }
  return mac;
}
