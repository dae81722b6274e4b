// Live progress of one job through Server-Sent Events (see progress_sse.html).
const params = new URLSearchParams(location.search);
const SERVER = params.get('server') || 'http://localhost:8080';
const SIZE = Number(params.get('size') || 512);
const STEPS = Number(params.get('steps') || 20);
const FINISHED = ['completed', 'failed', 'cancelled'];

async function generateWithProgress(prompt) {
    const progress = document.getElementById('progress');
    const status = document.getElementById('status');
    const response = await fetch(`${SERVER}/api/v1/generate`, {
        method: 'POST',
        headers: {'Content-Type': 'application/json'},
        body: JSON.stringify({prompt, width: SIZE, height: SIZE, steps: STEPS, wait: false})
    });
    const job = await response.json();
    if (!response.ok) {
        status.textContent = job.error.message;
        return;
    }
    status.textContent = job.status;
    const events = new EventSource(SERVER + job.links.events);
    const finished = new Promise(resolve => {
        events.addEventListener('progress', e => {
            const data = JSON.parse(e.data);
            // stage changes (loading, encoding, sampling, decoding, writing) and sampling steps
            if (data.steps) progress.value = Math.round(100 * data.step / data.steps);
            status.textContent = data.steps ? `${data.stage} ${data.step}/${data.steps}` : data.stage;
        });
        events.addEventListener('state', e => {
            // the first event: the job as it is now (it may have finished already)
            const state = JSON.parse(e.data).status;
            if (FINISHED.includes(state)) resolve(state);
        });
        for (const name of FINISHED) events.addEventListener(name, () => resolve(name));
    });
    const outcome = await finished;
    events.close();
    status.textContent = outcome;
    if (outcome !== 'completed') return;
    progress.value = 100;
    const done = await (await fetch(`${SERVER}/api/v1/generate/${job.job_id}?base64=true`)).json();
    for (const image of done.images) {
        const img = document.createElement('img');
        img.src = `data:image/${image.format};base64,${image.data}`;
        img.alt = `seed ${image.seed}`;
        document.getElementById('images').appendChild(img);
    }
}

document.getElementById('form').addEventListener('submit', event => {
    event.preventDefault();
    generateWithProgress(document.getElementById('prompt').value);
});
