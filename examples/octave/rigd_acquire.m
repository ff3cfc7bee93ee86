% rigd from GNU Octave or MATLAB, unchanged: load a pipeline, start a run with
% metadata, poll it, stop it, and read the recorded frames back.
%
%   RIGD_URL=http://127.0.0.1:8470 RIGD_TOKEN_FILE=~/.local/state/rigd/token \
%     octave --no-gui rigd_acquire.m
%
% Requests are forms (webwrite's name/value pairs, all Octave 7's webwrite
% sends; MATLAB sends the same) and answers JSON (webread); the token goes in
% a header through weboptions("HeaderFields", ...). README: "Lab software".

addpath(fileparts(mfilename("fullpath")));  % rigd_json.m, beside this file
url = getenv("RIGD_URL");
if isempty(url), url = "http://127.0.0.1:8470"; end
token_file = getenv("RIGD_TOKEN_FILE");
if isempty(token_file), token_file = fullfile(getenv("HOME"), ".local/state/rigd/token"); end
pipeline = getenv("RIGD_PIPELINE");
if isempty(pipeline), pipeline = "demo"; end
run_id = getenv("RIGD_RUN_ID");
if isempty(run_id), run_id = ["octave-" datestr(now, "yyyymmddTHHMMSS")]; end
wanted = str2double(getenv("RIGD_FRAMES"));
if isnan(wanted), wanted = 200; end

token = strtrim(fileread(token_file));
auth = {"Authorization", ["Bearer " token]};
reading = weboptions("HeaderFields", auth, "Timeout", 60);
writing = weboptions("HeaderFields", auth, "Timeout", 120, ...
                     "MediaType", "application/x-www-form-urlencoded");
loading = weboptions("HeaderFields", auth, "Timeout", 120, "RequestMethod", "put", ...
                     "MediaType", "application/x-www-form-urlencoded");

% Load a pipeline the daemon knows by name (PUT /v1/pipeline, form field file).
info = rigd_json(webwrite([url "/v1/pipeline"], "file", pipeline, loading));
fprintf("loaded pipeline %s\n", info.name);

% Start a run: meta.KEY fields are the run's metadata (numbers stay numbers).
run = rigd_json(webwrite([url "/v1/runs"], "run_id", run_id, ...
                         "meta.animal", "mouse12", "meta.trial", "3", writing));
fprintf("run %s %s\n", run.run_id, run.state);

% Poll the status until the first link has the frames wanted.
written = 0;
for attempt = 1:1200
  status = rigd_json(webread([url "/v1/status"], reading));
  links = status.links;
  if ~isempty(links)
    if iscell(links), link = links{1}; else, link = links(1); end
    written = link.written;
    if written >= wanted, break; end
  end
  pause(0.05);
end
fprintf("%d frames written, state %s\n", written, status.state);

% Stop it cleanly (the stop takes no fields; webwrite must send one).
stopped = rigd_json(webwrite([url "/v1/runs/current/stop"], "from", "octave", writing));
files = stopped.files;
if iscell(files), file = files{1}; else, file = files(1, :); end
fprintf("run %s %s: %s\n", stopped.run_id, stopped.state, file);

% Read the frames back (MATLAB, or Octave with the hdf5oct package: h5read;
% Octave 7 alone: load's HDF5 reader). Either way, x by y by frame.
if exist("h5read")
  frames = h5read(file, "/camera/frames");
  ids = h5read(file, "/camera/frame_id");
else
  state = warning("off", "all");
  data = load("-hdf5", file, "camera");
  warning(state);
  frames = data.camera.frames;
  ids = data.camera.frame_id;
end
fprintf("read %d frames of %dx%d %s, ids %d to %d\n", size(frames, 3), size(frames, 1), ...
        size(frames, 2), class(frames), ids(1), ids(end));
