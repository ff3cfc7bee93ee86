function value = rigd_json(answer)
  % The daemon's JSON answer as a struct: MATLAB's webread/webwrite decode
  % JSON themselves; GNU Octave 7's return its text, decoded here.
  if ischar(answer)
    value = jsondecode(answer);
  else
    value = answer;
  end
end
