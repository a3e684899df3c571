; Inno Setup recipe for Windows: installs the PyInstaller one-folder build and registers the
; file associations. Build the app first (pyinstaller packaging/pyinstaller/checkpoint-inspector.spec),
; then: iscc packaging\windows\checkpoint-inspector.iss

#define AppName "Checkpoint Inspector"
#define AppVersion "0.1.0"
#define AppExe "checkpoint-inspector.exe"
#define ProgId "CheckpointInspector.Checkpoint"
#define SafetensorsProgId "CheckpointInspector.Safetensors"

[Setup]
AppId={{6F0B8E5A-2C1D-4E7F-9A35-0C4B1D2E8F71}
AppName={#AppName}
AppVersion={#AppVersion}
AppPublisher=The Checkpoint Inspector developers
DefaultDirName={autopf}\Checkpoint Inspector
DefaultGroupName=Checkpoint Inspector
OutputBaseFilename=checkpoint-inspector-{#AppVersion}-setup
SetupIconFile=..\..\resources\icons\checkpoint-inspector.ico
UninstallDisplayIcon={app}\{#AppExe}
ChangesAssociations=yes
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesInstallIn64BitMode=x64compatible
Compression=lzma2
SolidCompression=yes

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"
Name: "chinesesimplified"; MessagesFile: "compiler:Languages\ChineseSimplified.isl"

[Files]
Source: "..\..\dist\checkpoint-inspector\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\{#AppName}"; Filename: "{app}\{#AppExe}"
Name: "{group}\Uninstall {#AppName}"; Filename: "{uninstallexe}"

[Registry]
; One ProgId for torch checkpoints, one for safetensors; each extension points at its ProgId.
Root: HKA; Subkey: "Software\Classes\{#ProgId}"; ValueType: string; ValueName: ""; ValueData: "PyTorch checkpoint"; Flags: uninsdeletekey
Root: HKA; Subkey: "Software\Classes\{#ProgId}\DefaultIcon"; ValueType: string; ValueName: ""; ValueData: "{app}\{#AppExe},0"
Root: HKA; Subkey: "Software\Classes\{#ProgId}\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\{#AppExe}"" -- ""%1"""
Root: HKA; Subkey: "Software\Classes\{#SafetensorsProgId}"; ValueType: string; ValueName: ""; ValueData: "safetensors tensors"; Flags: uninsdeletekey
Root: HKA; Subkey: "Software\Classes\{#SafetensorsProgId}\DefaultIcon"; ValueType: string; ValueName: ""; ValueData: "{app}\{#AppExe},0"
Root: HKA; Subkey: "Software\Classes\{#SafetensorsProgId}\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\{#AppExe}"" -- ""%1"""
Root: HKA; Subkey: "Software\Classes\.pth\OpenWithProgids"; ValueType: string; ValueName: "{#ProgId}"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.pt\OpenWithProgids"; ValueType: string; ValueName: "{#ProgId}"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.ckpt\OpenWithProgids"; ValueType: string; ValueName: "{#ProgId}"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.safetensors\OpenWithProgids"; ValueType: string; ValueName: "{#SafetensorsProgId}"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\Applications\{#AppExe}\SupportedTypes"; ValueType: string; ValueName: ".pth"; ValueData: ""
Root: HKA; Subkey: "Software\Classes\Applications\{#AppExe}\SupportedTypes"; ValueType: string; ValueName: ".pt"; ValueData: ""
Root: HKA; Subkey: "Software\Classes\Applications\{#AppExe}\SupportedTypes"; ValueType: string; ValueName: ".ckpt"; ValueData: ""
Root: HKA; Subkey: "Software\Classes\Applications\{#AppExe}\SupportedTypes"; ValueType: string; ValueName: ".safetensors"; ValueData: ""

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent
