// The submit route of each mode (what a re-run posts to).
export const ROUTES = { txt2img: "generate/text2img", img2img: "generate/img2img", inpaint: "generate/inpainting", upscale: "upscale" };
