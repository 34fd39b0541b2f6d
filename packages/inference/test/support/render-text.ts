import sharp from "sharp";

export interface RenderOptions {
  font?: string;
  /** Resolution of the rendering: DejaVu Sans at the default 12 pt is about 1/6 inch high. */
  dpi?: number;
  /** White margin around the text, in pixels. */
  margin?: number;
  format?: "png" | "jpeg";
}

/**
 * One line of black printed text on white, rendered by libvips/Pango with a system font (found
 * through fontconfig: run .ci/install-fonts.sh when `fc-list` shows no DejaVu font).
 */
export async function renderTextLine(text: string, options: RenderOptions = {}): Promise<Buffer> {
  const margin = options.margin ?? 10;
  // Pango markup: escape what it would read as tags or entities.
  const markup = text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  const glyphs = await sharp({
    text: { text: markup, font: options.font ?? "DejaVu Sans", dpi: options.dpi ?? 144, rgba: true },
  })
    .png()
    .toBuffer();
  const line = sharp(glyphs)
    .flatten({ background: "#ffffff" })
    .extend({ top: margin, bottom: margin, left: margin, right: margin, background: "#ffffff" });
  return options.format === "jpeg" ? line.jpeg({ quality: 92 }).toBuffer() : line.png().toBuffer();
}

export async function renderTextLineBase64(text: string, options: RenderOptions = {}): Promise<string> {
  return (await renderTextLine(text, options)).toString("base64");
}
