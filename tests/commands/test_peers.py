"""The test peers themselves work: a file sent with DCMTK's storescu reaches each of them."""

import subprocess

from tests.support.peers import dcmtk


def test_orthanc_and_storescp_receive(orthanc, storescp, samples):
    f = samples / "dicom_vendor" / "MR-SIEMENS-DICOM-WithOverlays.dcm"
    for port in (orthanc.dicom_port, storescp.port):
        subprocess.run([dcmtk("storescu"), "127.0.0.1", str(port), str(f)], check=True, timeout=60)
    assert len(orthanc.get("/instances")) == 1
    assert len(storescp.received()) == 1
