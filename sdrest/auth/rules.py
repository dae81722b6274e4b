"""Who may call what: one rule per endpoint, in one table.

Roles are ordered guest < user < admin. ``PUBLIC`` needs no credentials at all. Users see only
their own jobs and images (another user's job answers 404, never 403); admins see everything.
``tests/auth/test_rules.py`` walks the app's URL map and fails for any endpoint missing here.
"""

from __future__ import annotations

from dataclasses import dataclass

ROLES = ("guest", "user", "admin")
PUBLIC = "public"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a name (the owner of their jobs) and a role."""

    name: str | None  # None only with --auth none (jobs then have no owner)
    role: str
    method: str  # "none", "jwt", "api-key", "unix", "pam", "guest"

    def at_least(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)

    @property
    def sees_everything(self) -> bool:
        return self.role == "admin"


#: endpoint -> the least role allowed ("public": no credentials needed)
RULES: dict[str, str] = {
    # authentication itself
    "auth.login": PUBLIC,
    "auth.refresh": PUBLIC,  # needs a refresh token, checked by the view
    "auth.logout": "guest",
    "auth.profile": "guest",
    "auth.attempts": "admin",
    # documentation and the browser UI shell (the UI logs in through the API)
    "system.openapi": PUBLIC,
    "ui.home": PUBLIC,
    "ui.ui": PUBLIC,
    "static": PUBLIC,
    # read-only server information
    "system.status": "guest",
    "system.system": "admin",  # paths, memory, versions: operators only
    "metrics.metrics": "guest",  # what /status tells, as Prometheus text (no ids, owners, prompts)
    "models.list_models": "guest",
    "models.model": "guest",
    "models.presets": "guest",
    "models.preset": "guest",
    "models.prompt_templates": "guest",
    "models.prompt_template": "guest",
    # the catalogue with what is installed: users see what an admin could set up (the Create
    # view's empty state); not guests, who get the model listing only
    "models.recipes": "user",
    # model lifecycle: shared state, so admins only
    "models.scan": "admin",
    "models.load": "admin",
    "models.unload": "admin",
    "convert.convert_model": "admin",  # writes a file into the model folders
    # model downloads: write into the model folders and reach the network
    "downloads.create_download": "admin",
    "downloads.list_downloads": "admin",
    "downloads.get_download": "admin",
    "downloads.cancel_download": "admin",
    # generation (guests too when --guest-can-generate; see web.py)
    "generate.generate": "user",
    "generate.text2img": "user",
    "generate.img2img": "user",
    "generate.inpainting": "user",
    "generate.upscale": "user",
    "video.generate_video": "user",
    # jobs: own ones for users, all for admins (filtered in the views)
    "generate.get_job": "guest",
    "generate.cancel_job": "user",
    "jobs.queue": "guest",
    "jobs.delete_job": "user",
    "jobs.job_image": "guest",
    "video.job_video": "guest",
    "events.all_events": "guest",
    "events.job_events": "guest",
    # AUTOMATIC1111 /sdapi/v1: the same rules as the native routes they stand for
    "a1111.txt2img": "user",
    "a1111.img2img": "user",
    "a1111.extra_single_image": "user",
    "a1111.progress": "guest",  # the caller's own jobs (admins: all)
    "a1111.interrupt": "user",  # the caller's own running job (admins: any)
    "a1111.skip": "user",
    "a1111.get_options": "guest",
    "a1111.set_options": "admin",  # switches the model for everyone, like models.load
    "a1111.cmd_flags": "admin",  # server settings and paths, like system.system
    "a1111.memory": "admin",
    "a1111.sd_models": "guest",
    "a1111.sd_vae": "guest",
    "a1111.samplers": "guest",
    "a1111.schedulers": "guest",
    "a1111.upscalers": "guest",
    "a1111.latent_upscale_modes": "guest",
    "a1111.loras": "guest",
    "a1111.embeddings": "guest",
    "a1111.prompt_styles": "guest",
    "a1111.png_info": "guest",
    "a1111.refresh": "admin",  # like models.scan
    "a1111.unload_checkpoint": "admin",  # like models.unload
    "a1111.reload_checkpoint": "admin",  # like models.load
    # OpenAI images /v1
    "openai.generations": "user",
    "openai.edits": "user",
    "openai.models": "guest",
    "openai.model": "guest",
}

#: Endpoints guests may also use when --guest-can-generate is set.
GUEST_GENERATION = (
    "generate.generate",
    "generate.text2img",
    "generate.img2img",
    "generate.inpainting",
    "generate.upscale",
    "generate.cancel_job",
    "video.generate_video",
    "a1111.txt2img",
    "a1111.img2img",
    "a1111.extra_single_image",
    "a1111.interrupt",
    "a1111.skip",
    "openai.generations",
    "openai.edits",
)
